# shellcheck shell=bash disable=SC2154  # tessera, configs, cluster: set by the sourcing test
# Helpers for the tests that run jobs on the real single-node Slurm started by
# scripts/slurm/start-cluster.sh (the ctest fixture slurm_cluster). Source after setting
# `tessera`, `configs` and `cluster` (the cluster's directory).
set -u
# shellcheck disable=SC1091
. "$cluster/env.sh" || {
  echo "FAIL: no test cluster in $cluster (the fixture slurm.cluster.start failed?)"
  exit 1
}
export OMP_NUM_THREADS=1
work=$(mktemp -d /tmp/tessera-slurm-test.XXXXXX)
cd "$work" || exit 1
failures=0
started=$(date +%s)
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# Ends the test: prints logs and keeps the work directory when something failed.
finish() {
  local message=$1
  if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files kept in $work:"
    find "$work" -path '*slurm/*' -type f -name '*.out' -o -path '*slurm/*' -name '*.err' |
      while read -r file; do echo "== $file"; tail -20 "$file"; done
    exit 1
  fi
  rm -rf "$work"
  echo "ok ($(($(date +%s) - started)) s): $message"
  exit 0
}

job_field() {  # JOB FIELD: one field of `scontrol show job`
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
is_final_state() {
  case $1 in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
  esac
  return 1
}
# Waits until JOB has ended (any final state) and prints the state; gives up after SECONDS.
wait_job_end() {
  local job=$1 seconds=${2:-120} state
  for _ in $(seq $((seconds * 5))); do
    state=$(job_field "$job" JobState)
    if is_final_state "$state"; then
      echo "$state"
      return
    fi
    sleep 0.2
  done
  echo "STILL_${state:-UNKNOWN}"
}
# Waits until JOB has been requeued RESTARTS times and is pending, then lets it start now:
# Slurm holds a requeued job ~2 minutes (Reason=BeginTime) before it may run again. Returns 1
# when the job ends instead, or after SECONDS.
release_requeued() {
  local job=$1 restarts=$2 seconds=${3:-60} state
  for _ in $(seq $((seconds * 5))); do
    state=$(job_field "$job" JobState)
    if [ "$(job_field "$job" Restarts)" -ge "$restarts" ] 2>/dev/null && [ "$state" = PENDING ]; then
      scontrol update JobId="$job" StartTime=now
      return 0
    fi
    is_final_state "$state" && return 1
    sleep 0.2
  done
  return 1
}
# Waits until FILE has a line matching PATTERN.
wait_for_line() {
  local file=$1 pattern=$2 seconds=${3:-60}
  for _ in $(seq $((seconds * 5))); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
# The parameter checksum in the last {"kind":"final"} record of RUN_DIR/metrics.jsonl.
final_checksum() {
  grep '"kind":"final"' "$1/metrics.jsonl" 2>/dev/null | tail -1 |
    sed 's/.*"parameter_checksum":"\([0-9a-f]*\)".*/\1/'
}
