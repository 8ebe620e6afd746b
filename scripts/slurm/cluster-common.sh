# shellcheck shell=bash disable=SC2154  # script: set by the sourcing script
# What the test clusters' start and stop scripts share (start-cluster.sh: one node;
# test-cluster.sh: several nodes in network namespaces). Source it after defining `script` (the
# name messages start with).

fail() {
  echo "$script: $*" >&2
  exit 1
}

# Root, Slurm, munge and PMIx (srun --mpi=pmix loads it) must be there.
check_prerequisites() {
  [ "$(id -u)" -eq 0 ] || fail "must run as root (slurmd starts jobs as any user)"
  local program
  for program in munged munge unmunge slurmctld slurmd scontrol sinfo sbatch srun "$@"; do
    command -v "$program" >/dev/null ||
      fail "$program not found; install Slurm and munge with scripts/install-deps.sh"
  done
  [ -e /usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so ] || ldconfig -p | grep -q 'libpmix\.so ' ||
    fail "libpmix.so not found (srun --mpi=pmix loads it); install libpmix-dev with scripts/install-deps.sh"
}

# Sets ctld_port and slurmd_port: the given ones (TESSERA_SLURM_CTLD_PORT /
# TESSERA_SLURM_SLURMD_PORT), or the first free pair of 20 from FIRST up (two test clusters, e.g.
# from two build trees, can then run side by side; the single-node and the multi-node clusters
# start from different FIRSTs, so that two starting at once never pick the same pair).
choose_ports() {  # FIRST
  local first=$1
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  if [ -n "${TESSERA_SLURM_CTLD_PORT:-}" ] || [ -n "${TESSERA_SLURM_SLURMD_PORT:-}" ]; then
    ctld_port=${TESSERA_SLURM_CTLD_PORT:-16817}
    slurmd_port=${TESSERA_SLURM_SLURMD_PORT:-16818}
    local port
    for port in "$ctld_port" "$slurmd_port"; do
      port_free "$port" || fail "port $port is in use; pick free ones with TESSERA_SLURM_CTLD_PORT / TESSERA_SLURM_SLURMD_PORT"
    done
    return
  fi
  for ctld_port in $(seq "$first" 2 $((first + 38))) none; do
    [ "$ctld_port" != none ] || break
    slurmd_port=$((ctld_port + 1))
    port_free "$ctld_port" && port_free "$slurmd_port" && break
  done
  [ "$ctld_port" != none ] ||
    fail "no free port pair in $first-$((first + 39)); set TESSERA_SLURM_CTLD_PORT / TESSERA_SLURM_SLURMD_PORT"
}

# Writes DIR/slurm.conf from slurm.conf.in (the settings every test cluster shares) with the
# controller host, the slurmd file names, and then the node and partition lines given.
write_slurm_conf() {  # DIR CTLD_HOST SLURMD_NAME NODE_LINES
  local dir=$1 ctld_host=$2 slurmd_name=$3 node_lines=$4
  sed -e "s#@DIR@#$dir#g" -e "s#@CTLD_HOST@#$ctld_host#g" -e "s#@SLURMD@#$slurmd_name#g" \
    -e "s#@CTLD_PORT@#$ctld_port#g" -e "s#@SLURMD_PORT@#$slurmd_port#g" \
    "$(dirname "${BASH_SOURCE[0]}")/slurm.conf.in" >"$dir/slurm.conf"
  printf '%s\n' "$node_lines" >>"$dir/slurm.conf"
  cat >"$dir/env.sh" <<ENV
# Source this to use the test cluster: clients find it through SLURM_CONF.
export SLURM_CONF=$dir/slurm.conf
# The nodes declare more CPUs than the machine has; Open MPI ranks that busy-wait would then
# starve each other (a 1.5 MB checkpoint of 4 ranks on 2 cores: 45 s instead of 0.5 s).
export OMPI_MCA_mpi_yield_when_idle=1
ENV
}

# munged is one per machine: reuse a running one; otherwise start it and remember that we did.
start_munge() {  # DIR
  local dir=$1
  rm -f "$dir/run/munged.pid"
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
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
  local _
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  [ -s /run/munge/munged.pid ] || fail "munged did not start (see /var/log/munge/munged.log)"
  cp /run/munge/munged.pid "$dir/run/munged.pid"
  # Marks munged as started by a test cluster, for whichever cluster stops last.
  cp /run/munge/munged.pid /run/munge/started-by-tessera-test-cluster
  munge -n | unmunge >/dev/null || fail "munge cannot decode its own credential (see /var/log/munge/munged.log)"
}

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
node_idle() { [ "$(sinfo -h -N -n "$1" -o %t 2>/dev/null)" = idle ]; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Cancels the cluster's jobs and waits (10 s at most) for them to end.
cancel_jobs() {  # DIR
  local dir=$1 jobs _
  [ -f "$SLURM_CONF" ] && alive "$dir/run/slurmctld.pid" || return 0
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  [ -n "${jobs// /}" ] || return 0
  echo "$script: cancelling jobs $jobs"
  # shellcheck disable=SC2086  # one argument per job id
  timeout 10 scancel $jobs
  for _ in $(seq 50); do
    [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null)" ] && break
    sleep 0.2
  done
}

# Stops the daemon a pid file names, after checking that it is that program.
stop_daemon() {  # NAME PIDFILE
  local name=$1 pidfile=$2 pid _
  alive "$pidfile" || {
    rm -f "$pidfile"
    return 0
  }
  pid=$(cat "$pidfile")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    echo "$script: pid $pid is not $name; leaving it alone"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$script: $name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid"
  fi
  echo "$script: stopped $name (pid $pid)"
  rm -f "$pidfile"
}

# munged serves every Slurm on the machine: a test cluster started it (the marker), and the last
# test cluster to stop, this one or another, stops it once no Slurm daemon is left.
stop_munge_if_last() {  # DIR
  local dir=$1 marker=/run/munge/started-by-tessera-test-cluster
  if [ -s "$marker" ]; then
    if [ -n "$(ps -C slurmctld,slurmd -o pid= 2>/dev/null)" ]; then
      echo "$script: another Slurm daemon still uses munged; leaving it running"
    else
      cp "$marker" "$dir/run/munged.pid"
      stop_daemon munged "$dir/run/munged.pid"
      rm -f "$marker"
    fi
  fi
  rm -f "$dir/run/munged.pid"
}
