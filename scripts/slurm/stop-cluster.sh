#!/usr/bin/env bash
# Stops the cluster that start-cluster.sh started from DIR: cancels its jobs, then stops the
# daemons named by its pid files (slurmd, slurmctld), each checked by name before it is
# signalled, and munged if a test cluster started it and no Slurm daemon needs it any more.
# Running it twice, or on a dead cluster, is fine.
set -uo pipefail
[ $# -eq 1 ] || {
  echo "usage: stop-cluster.sh DIR (as given to start-cluster.sh)" >&2
  exit 1
}
dir=$(realpath -m "$1")
export SLURM_CONF=$dir/slurm.conf

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ -f "$SLURM_CONF" ] && alive "$dir/run/slurmctld.pid"; then
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    echo "stop-cluster.sh: cancelling jobs $jobs"
    # shellcheck disable=SC2086  # one argument per job id
    timeout 10 scancel $jobs
    for _ in $(seq 50); do
      [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
fi

stop_daemon() {  # NAME PIDFILE
  local name=$1 pidfile=$2 pid
  alive "$pidfile" || {
    rm -f "$pidfile"
    return 0
  }
  pid=$(cat "$pidfile")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    echo "stop-cluster.sh: pid $pid is not $name; leaving it alone"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-cluster.sh: $name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid"
  fi
  echo "stop-cluster.sh: stopped $name (pid $pid)"
  rm -f "$pidfile"
}
stop_daemon slurmd "$dir/run/slurmd.pid"
stop_daemon slurmctld "$dir/run/slurmctld.pid"
# munged serves every Slurm on the machine: a test cluster started it (the marker), and the
# last test cluster to stop, this one or another, stops it once no Slurm daemon is left.
marker=/run/munge/started-by-tessera-test-cluster
if [ -s "$marker" ]; then
  if [ -n "$(ps -C slurmctld,slurmd -o pid= 2>/dev/null)" ]; then
    echo "stop-cluster.sh: another Slurm daemon still uses munged; leaving it running"
  else
    cp "$marker" "$dir/run/munged.pid"
    stop_daemon munged "$dir/run/munged.pid"
    rm -f "$marker"
  fi
fi
rm -f "$dir/run/munged.pid"
exit 0
