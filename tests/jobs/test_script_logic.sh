#!/usr/bin/env bash
# The generated script's run / forward / requeue logic, without Slurm: the script runs under
# bash with stand-ins for srun (runs the command), scontrol (records its arguments) and the
# trainer (exits 0, 2 or 75, or waits for a signal and says which one it got).
# Usage: test_script_logic.sh TESSERA CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

mkdir bin
cat >bin/srun <<'S'
#!/bin/bash
while [ "${1:0:2}" = -- ]; do shift; done  # srun's own options
exec "$@"
S
cat >bin/scontrol <<'S'
#!/bin/bash
echo "$*" >>"$FAKE_DIR/scontrol.calls"
exit "${FAKE_SCONTROL_STATUS:-0}"
S
cat >bin/fake-tessera <<'S'
#!/bin/bash
echo "rank: $*"
# Dying inside MPI_Init: no start mark (the first launch only, or every one).
if [ "$FAKE_MODE" = dies_starting ] || { [ "$FAKE_MODE" = dies_starting_once ] && [ ! -e "$FAKE_DIR/launched" ]; }; then
  touch "$FAKE_DIR/launched"
  echo "Segmentation fault in MPI_Init" >&2
  exit 139
fi
echo launched >>"$FAKE_DIR/launches"
touch "$TESSERA_STARTED_DIR/rank-0"  # what tessera does once MPI_Init returns
case $FAKE_MODE in
  dies_starting_once) exit 0 ;;
  fails) exit 1 ;;
  finish) exit 0 ;;
  stop) exit 75 ;;
  bad) echo "tessera: error: something" >&2; exit 2 ;;
  wait)
    trap 'echo "rank got USR1"; exit 75' USR1
    trap 'echo "rank got TERM"; exit 1' TERM
    touch "$FAKE_DIR/ready"
    for _ in $(seq 300); do sleep 0.1; done
    exit 1 ;;
esac
S
chmod +x bin/*
export PATH=$work/bin:$PATH FAKE_DIR=$work
export SLURM_JOB_ID=42 SLURM_JOB_NAME=tiny SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1

"$tessera" slurm "$configs/tiny.toml" --nodes 1 --tasks-per-node 1 --time 00:10:00 \
  --tessera "$work/bin/fake-tessera" --set run.dir=run --set train.steps=50 --output job.sh 2>gen.err ||
  { echo "FAIL: tessera slurm did not write the script"; exit 1; }

# run_job NAME MODE [SIGNAL] [RESTART]: runs job.sh, sends SIGNAL to it once the rank is ready.
run_job() {
  local name=$1 mode=$2 signal=${3:-} restart=${4:-0} script=${5:-job.sh}
  rm -f "$work/ready" "$work/scontrol.calls" "$work/launched" "$work/launches"
  FAKE_MODE=$mode SLURM_RESTART_COUNT=$restart bash "$script" >"$name.log" 2>&1 &
  local pid=$!
  if [ -n "$signal" ]; then
    for _ in $(seq 100); do [ -e "$work/ready" ] && break; sleep 0.05; done
    kill -s "$signal" "$pid"
  fi
  wait "$pid"
  status=$?
  calls=$(cat "$work/scontrol.calls" 2>/dev/null)
}
expect() {  # DESCRIPTION STATUS CALLS PATTERN_IN_LOG LOG
  local what=$1 want_status=$2 want_calls=$3 pattern=$4 log=$5
  [ "$status" = "$want_status" ] || fail "$what: exit $status, expected $want_status"
  [ "$calls" = "$want_calls" ] || fail "$what: scontrol called with '$calls', expected '$want_calls'"
  grep -q -- "$pattern" "$log" || { fail "$what: '$pattern' not in $log:"; cat "$log"; }
}

run_job finished finish
expect "finished run" 0 "" "training finished (exit 0)" finished.log
grep -q "^rank: train $configs/tiny.toml --set run.dir=run --set train.steps=50" run/slurm/tiny-42-r0.out ||
  fail "the rank's output is not in run/slurm/tiny-42-r0.out with the training command"

run_job stopped stop
expect "early stop" 0 "requeue 42" "scontrol requeue 42" stopped.log

run_job usr1 wait USR1
expect "USR1 to the batch shell" 0 "requeue 42" "got SIGUSR1: asking the ranks" usr1.log
grep -q "rank got USR1" run/slurm/tiny-42-r0.out || fail "USR1 did not reach the rank"

run_job term wait TERM 3
expect "TERM to the batch shell" 0 "requeue 42" "got SIGTERM: asking the ranks" term.log
grep -q "rank got USR1" run/slurm/tiny-42-r3.out || fail "TERM did not reach the rank as USR1"

run_job limit stop "" 20
expect "restart count at max_requeues" 75 "" "restarted 20 times (max_requeues = 20): not requeued" limit.log

FAKE_SCONTROL_STATUS=1 run_job refused stop
expect "scontrol requeue fails" 75 "requeue 42" "scontrol requeue failed" refused.log

run_job bad bad
expect "bad input" 2 "" "tessera refused its input (exit 2)" bad.log
grep -q "tessera: error: something" run/slurm/tiny-42-r0.err || fail "rank errors not in the .err file"

# Ranks that die before MPI has started on all of them: launched again, at most 3 times in all;
# a failure after the start is not.
run_job relaunch dies_starting_once
expect "death in MPI_Init, once" 0 "" "nothing ran, launching again (2 of 3)" relaunch.log
grep -q "training finished (exit 0)" relaunch.log || fail "the second launch did not finish: $(cat relaunch.log)"
[ "$(grep -c "^rank: train" run/slurm/tiny-42-r0.out)" = 2 ] ||
  fail "both launches' output is not in run/slurm/tiny-42-r0.out"
run_job relaunch_limit dies_starting
expect "death in MPI_Init, always" 139 "" "in each of 3 launches" relaunch_limit.log
[ "$(grep -c "launching again" relaunch_limit.log)" = 2 ] || fail "not launched exactly 3 times"
run_job late_failure fails
expect "failure after the start" 1 "" "training failed (exit 1)" late_failure.log
[ "$(cat "$work/launches")" = launched ] || fail "a failure after MPI started was launched again"
[ ! -e run/slurm/started-42-r0 ] || fail "the start marks were left behind"

# tessera itself marks each rank's start where the job script asks.
mkdir marks
TESSERA_STARTED_DIR=$work/marks "$tessera" --version >/dev/null || fail "tessera --version failed"
[ -e marks/rank-0 ] || fail "tessera did not mark rank 0's start in TESSERA_STARTED_DIR"

sed 's/^requeue_on_stop=1$/requeue_on_stop=0/' job.sh >chain.sh
run_job chain stop "" 0 chain.sh
expect "early stop in a chain" 0 "" "the next job of the chain resumes it" chain.log

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "ok: finish, stop, USR1, TERM, max_requeues, failed requeue, bad input, death in MPI_Init and chain behave"
