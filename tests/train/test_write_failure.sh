#!/usr/bin/env bash
# A checkpoint write that the file system refuses midway (its space taken after the save's
# check: injected with fail_writes.so, ENOSPC after 20 kB), on 1 and 2 ranks, synchronous and
# asynchronous: every rank stops with the same one line and exit status 2, no rank hangs or
# crashes at exit, the temporary file is gone, and the checkpoints written before and `latest`
# are intact: a run without the fault resumes from them and finishes.
# Usage: test_write_failure.sh TESSERA CONFIG_DIR FAIL_WRITES_LIBRARY
set -u
tessera=$1
configs=$2
library=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
common=(--set train.warmup_steps=2 --set checkpoint.every=2 --set eval.every=0
  --set log.progress='"plain"' --set train.micro_batch=8 --set train.hang_timeout_s=60)

for ranks in 1 2; do
  for async in false true; do
    name="$ranks rank(s), checkpoint.async = $async"
    run="$work/run-$ranks-$async"
    launch=(mpiexec -n "$ranks" --oversubscribe)
    "${launch[@]}" "$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="\"$run\"" \
      --set train.steps=4 >"$work/first.out" 2>&1 || { fail "$name: the first run"; continue; }
    timeout -s KILL 120 "${launch[@]}" -x TESSERA_FAIL_WRITES_MATCH=.tmp- \
      -x TESSERA_FAIL_WRITES_AFTER=20000 -x LD_PRELOAD="$library" \
      "$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="\"$run\"" \
      --set train.steps=8 --set checkpoint.async="$async" >"$work/out" 2>"$work/err"
    status=$?
    lines=$(grep -c "^tessera: error:" "$work/err")
    if [ "$status" -ne 2 ] || [ "$lines" -ne 1 ] ||
       ! grep -q "^tessera: error: writing checkpoint .*step_000000006.h5 failed .*the checkpoints already there are intact" "$work/err"; then
      fail "$name: status $status (want 2; 137: it hung), $lines error lines (want 1):"
      tail -5 "$work/err"
      continue
    fi
    if ls "$run/checkpoints" | grep -q "\.tmp-"; then fail "$name: a temporary file was left"; fi
    if [ "$(cat "$run/checkpoints/latest")" != step_000000004.h5 ]; then
      fail "$name: latest is '$(cat "$run/checkpoints/latest")', not step_000000004.h5"
    fi
    "${launch[@]}" "$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="\"$run\"" \
      --set train.steps=8 >"$work/resume.out" 2>&1
    if [ $? -ne 0 ] || ! grep -q "resumed from the checkpoint after step 4" "$work/resume.out"; then
      fail "$name: the run without the fault did not resume from step 4 and finish"
      tail -5 "$work/resume.out"
      continue
    fi
    echo "ok   $name: $(grep "^tessera: error:" "$work/err" | cut -c1-160)..."
  done
done
exit $((failures > 0))
