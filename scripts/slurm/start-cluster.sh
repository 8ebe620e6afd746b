#!/usr/bin/env bash
# Starts a private single-node Slurm (munged if none runs, slurmctld, slurmd) from Debian's
# packages, without systemd, for tessera's tests and for trying job scripts by hand:
#
#   scripts/slurm/start-cluster.sh /tmp/tessera-slurm     # then: . /tmp/tessera-slurm/env.sh
#   scripts/slurm/stop-cluster.sh /tmp/tessera-slurm
#
# Everything the cluster writes (slurm.conf, state, spool, logs, pid files) stays in DIR; the
# daemons started here are remembered by pid file and stop-cluster.sh stops only those.
# Settings (environment): TESSERA_SLURM_CPUS (CPUs the node declares, default 8: more than the
# machine has, so that multi-rank jobs fit), TESSERA_SLURM_CTLD_PORT / TESSERA_SLURM_SLURMD_PORT
# (default: the first free pair from 16817 / 16818). Needs root and the packages of scripts/install-deps.sh.
set -euo pipefail

fail() {
  echo "start-cluster.sh: $*" >&2
  exit 1
}

[ $# -eq 1 ] || fail "usage: start-cluster.sh DIR (where the cluster keeps its files)"
dir=$(realpath -m "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cpus=${TESSERA_SLURM_CPUS:-8}
started=$(date +%s%N)

[ "$(id -u)" -eq 0 ] || fail "must run as root (slurmd starts jobs as any user)"
for program in munged munge unmunge slurmctld slurmd scontrol sinfo sbatch srun; do
  command -v "$program" >/dev/null ||
    fail "$program not found; install Slurm and munge with scripts/install-deps.sh"
done
[ -e /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so ] || ldconfig -p | grep -q 'libpmix\.so ' ||
  fail "libpmix.so not found (srun --mpi=pmix loads it); install libpmix-dev with scripts/install-deps.sh"
if [ -s "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
  fail "a cluster from $dir is already running; stop it with scripts/slurm/stop-cluster.sh $dir"
fi
# Ports: the given ones, or the first free pair from 16817 up (two test clusters, e.g. from two
# build trees, can then run side by side).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${TESSERA_SLURM_CTLD_PORT:-}" ] || [ -n "${TESSERA_SLURM_SLURMD_PORT:-}" ]; then
  ctld_port=${TESSERA_SLURM_CTLD_PORT:-16817}
  slurmd_port=${TESSERA_SLURM_SLURMD_PORT:-16818}
  for port in "$ctld_port" "$slurmd_port"; do
    port_free "$port" || fail "port $port is in use; pick free ones with TESSERA_SLURM_CTLD_PORT / TESSERA_SLURM_SLURMD_PORT"
  done
else
  for ctld_port in $(seq 16817 2 16857) none; do
    [ "$ctld_port" != none ] || break
    slurmd_port=$((ctld_port + 1))
    port_free "$ctld_port" && port_free "$slurmd_port" && break
  done
  [ "$ctld_port" != none ] || fail "no free port pair in 16817-16858; set TESSERA_SLURM_CTLD_PORT / TESSERA_SLURM_SLURMD_PORT"
fi

# The node is named after the host; NodeAddr pins it to the loopback, so nothing must resolve.
node=$(hostname -s)
[ -n "$node" ] && [ "$node" != localhost ] || node=tessera-node
rm -rf "${dir:?}/state" "${dir:?}/spool" "${dir:?}/dev"
mkdir -p "$dir"/{state,spool,run,log}
memory_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
sed -e "s#@DIR@#$dir#g" -e "s#@NODE@#$node#g" -e "s#@CPUS@#$cpus#g" -e "s#@MEM@#$memory_mb#g" \
  -e "s#@CTLD_PORT@#$ctld_port#g" -e "s#@SLURMD_PORT@#$slurmd_port#g" \
  "$here/slurm.conf.in" >"$dir/slurm.conf"
# Slurm drops GPUs without device files: character devices equal to /dev/null stand in for them
# (no cgroups, so nothing is ever bound to them). gres.conf is read from slurm.conf's directory.
mkdir -p "$dir/dev"
for gpu in 0 1 2 3; do mknod "$dir/dev/gpu$gpu" c 1 3; done
echo "NodeName=$node Name=gpu File=$dir/dev/gpu[0-3]" >"$dir/gres.conf"
export SLURM_CONF=$dir/slurm.conf
cat >"$dir/env.sh" <<ENV
# Source this to use the test cluster: clients find it through SLURM_CONF.
export SLURM_CONF=$dir/slurm.conf
# The node declares more CPUs than the machine has; Open MPI ranks that busy-wait would then
# starve each other (a 1.5 MB checkpoint of 4 ranks on 2 cores: 45 s instead of 0.5 s).
export OMPI_MCA_mpi_yield_when_idle=1
ENV
: >"$dir/log/slurmctld.log"
: >"$dir/log/slurmd.log"

# munged is one per machine: reuse a running one; otherwise start it and remember that we did.
rm -f "$dir/run/munged.pid"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge /var/lib/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  [ -s /run/munge/munged.pid ] || fail "munged did not start (see /var/log/munge/munged.log)"
  cp /run/munge/munged.pid "$dir/run/munged.pid"
  # Marks munged as started by a test cluster, for whichever cluster stops last.
  cp /run/munge/munged.pid /run/munge/started-by-tessera-test-cluster
  munge -n | unmunge >/dev/null || fail "munge cannot decode its own credential (see /var/log/munge/munged.log)"
fi

wait_for() {  # SECONDS DESCRIPTION LOG COMMAND...: polls COMMAND every 0.2 s
  local deadline=$(($(date +%s) + $1)) what=$2 log=$3
  shift 3
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -20 "$log" >&2
      fail "$what (log: $log)"
    fi
    sleep 0.2
  done
}
controller_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_idle() { [ "$(sinfo -h -N -n "$node" -o %t 2>/dev/null)" = idle ]; }

slurmctld -f "$SLURM_CONF"  # daemonizes; writes run/slurmctld.pid
wait_for 60 "slurmctld did not come up" "$dir/log/slurmctld.log" controller_up
slurmd -f "$SLURM_CONF" -N "$node"  # daemonizes; writes run/slurmd.pid
wait_for 60 "node $node did not become idle" "$dir/log/slurmd.log" node_idle
echo "start-cluster.sh: Slurm up in $((($(date +%s%N) - started) / 1000000)) ms: node $node," \
  "$cpus CPUs, 4 GPUs (count only), partition debug, port $ctld_port; use it with: . $dir/env.sh"
