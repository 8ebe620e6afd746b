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
script=start-cluster.sh
# shellcheck source-path=SCRIPTDIR source=cluster-common.sh disable=SC2034  # script: read by cluster-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster-common.sh"

[ $# -eq 1 ] || fail "usage: start-cluster.sh DIR (where the cluster keeps its files)"
dir=$(realpath -m "$1")
cpus=${TESSERA_SLURM_CPUS:-8}
started=$(date +%s%N)
check_prerequisites
if alive "$dir/run/slurmctld.pid"; then
  fail "a cluster from $dir is already running; stop it with scripts/slurm/stop-cluster.sh $dir"
fi
choose_ports 16817

# The node is named after the host; NodeAddr pins it to the loopback, so nothing must resolve.
node=$(hostname -s)
[ -n "$node" ] && [ "$node" != localhost ] || node=tessera-node
rm -rf "${dir:?}/state" "${dir:?}/spool" "${dir:?}/dev"
mkdir -p "$dir"/{state,spool,run,log}
memory_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
# Four GPUs that exist only as a count: enough for `sbatch --test-only --gpus-per-node` to be
# judged by the controller.
write_slurm_conf "$dir" localhost "" \
  "NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
# Slurm drops GPUs without device files: character devices equal to /dev/null stand in for them
# (no cgroups, so nothing is ever bound to them). gres.conf is read from slurm.conf's directory.
mkdir -p "$dir/dev"
for gpu in 0 1 2 3; do mknod "$dir/dev/gpu$gpu" c 1 3; done
echo "NodeName=$node Name=gpu File=$dir/dev/gpu[0-3]" >"$dir/gres.conf"
export SLURM_CONF=$dir/slurm.conf
: >"$dir/log/slurmctld.log"
: >"$dir/log/slurmd.log"
start_munge "$dir"

slurmctld -f "$SLURM_CONF"  # daemonizes; writes run/slurmctld.pid
wait_for 60 "slurmctld did not come up" "$dir/log/slurmctld.log" controller_up
slurmd -f "$SLURM_CONF" -N "$node"  # daemonizes; writes run/slurmd.pid
wait_for 60 "node $node did not become idle" "$dir/log/slurmd.log" node_idle "$node"
echo "start-cluster.sh: Slurm up in $((($(date +%s%N) - started) / 1000000)) ms: node $node," \
  "$cpus CPUs, 4 GPUs (count only), partition debug, port $ctld_port; use it with: . $dir/env.sh"
