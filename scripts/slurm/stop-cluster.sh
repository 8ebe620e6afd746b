#!/usr/bin/env bash
# Stops the cluster that start-cluster.sh started from DIR: cancels its jobs, then stops the
# daemons named by its pid files (slurmd, slurmctld), each checked by name before it is
# signalled, and munged if a test cluster started it and no Slurm daemon needs it any more.
# Running it twice, or on a dead cluster, is fine.
set -uo pipefail
script=stop-cluster.sh
# shellcheck source-path=SCRIPTDIR source=cluster-common.sh disable=SC2034  # script: read by cluster-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster-common.sh"
[ $# -eq 1 ] || {
  echo "usage: stop-cluster.sh DIR (as given to start-cluster.sh)" >&2
  exit 1
}
dir=$(realpath -m "$1")
export SLURM_CONF=$dir/slurm.conf
cancel_jobs "$dir"
stop_daemon slurmd "$dir/run/slurmd.pid"
stop_daemon slurmctld "$dir/run/slurmctld.pid"
stop_munge_if_last "$dir"
exit 0
