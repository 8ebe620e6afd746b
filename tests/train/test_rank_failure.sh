#!/usr/bin/env bash
# No rank ever hangs: a problem one rank meets alone stops the whole job, and says which rank.
# Signals only processes it started: the ranks are found among the launcher's descendants.
# Usage: test_rank_failure.sh TESSERA CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
# descendants PID: every process below PID, children first.
descendants() {
  local child
  for child in $(pgrep -P "$1"); do
    echo "$child"
    descendants "$child"
  done
}
# ranks_of PID: the tessera ranks among PID's descendants.
ranks_of() {
  local pid
  for pid in $(descendants "$1"); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$tessera train" && echo "$pid"
  done
}

# 1. Only rank 0 writes the run directory: when it cannot, every rank stops with status 2 and
#    the message appears once.
touch "$work/not-a-directory"
timeout 60 mpiexec -n 4 --oversubscribe "$tessera" train "$configs/tiny.toml" \
  --set train.micro_batch=4 --set run.dir="$work/not-a-directory/run" >"$work/out" 2>"$work/err"
status=$?
lines=$(grep -c "^tessera: error:" "$work/err")
if [ "$status" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q "run.dir" "$work/err"; then
  fail "unwritable run.dir on 4 ranks: status $status (want 2), $lines error lines (want 1)"
  cat "$work/err"
else
  echo "ok   unwritable run.dir on 4 ranks: $(grep '^tessera: error:' "$work/err")"
fi

# 2. A rank killed in the middle of training ends the job: mpiexec reports which rank died and
#    every other rank is gone within the time limit (none waits forever in a collective).
mpiexec -n 4 --oversubscribe "$tessera" train "$configs/tiny.toml" --set train.steps=100000 \
  --set train.micro_batch=2 --set parallel.tp=2 --set parallel.pp=2 --set log.every=1 \
  --set log.progress=plain --set eval.every=0 --set run.dir="$work/run" >"$work/out" 2>&1 &
launcher=$!
for _ in $(seq 120); do grep -q "^step " "$work/out" && break; sleep 0.5; done
victim=$(ranks_of "$launcher" | sed -n 3p)
if [ -z "$victim" ]; then
  fail "the 4-rank job did not start: $(tail -5 "$work/out")"
else
  kill -9 "$victim"
  for _ in $(seq 60); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$launcher" 2>/dev/null; then
    fail "job still running 30 s after rank process $victim was killed"
  elif ! grep -qiE "rank [0-9]+.*(signal|killed)|process rank [0-9]+" "$work/out"; then
    fail "job ended without naming the dead rank:"; tail -20 "$work/out"
  else
    wait "$launcher"; status=$?
    [ "$status" -ne 0 ] || fail "job ended with status 0 after a rank was killed"
    echo "ok   killed rank ended the job (status $status): $(grep -iE 'process rank' "$work/out" | head -1)"
  fi
fi
for pid in $(ranks_of "$launcher") "$launcher"; do kill -9 "$pid" 2>/dev/null; done
[ "$failures" -eq 0 ] || { echo "$failures rank-failure case(s) failed"; exit 1; }
echo "all rank-failure cases end the job"
