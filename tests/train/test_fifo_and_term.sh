#!/usr/bin/env bash
# Nothing in a checkpoint or data directory that is not a regular file is opened, so a FIFO
# planted there cannot hang a run; and a second SIGTERM ends a run that cannot reach a step
# boundary. Every run has a deadline here: a hang is a failure, not a stuck test. Signals only
# the processes it started.
# Usage: test_fifo_and_term.sh TESSERA_BINARY CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
common=(--set eval.every=0 --set log.progress='"plain"' --set train.warmup_steps=2
  --set checkpoint.every=2)

# A run of 4 steps leaves checkpoints 2 and 4; then `latest` and step 4 become FIFOs.
run="$work/run"
"$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="$run" --set train.steps=4 \
  >"$work/first.out" 2>&1 || { fail "the first run"; cat "$work/first.out"; exit 1; }
rm "$run/checkpoints/latest" && mkfifo "$run/checkpoints/latest"
timeout 120 "$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="$run" \
  --set train.steps=6 >"$work/latest.out" 2>&1
status=$?
if [ "$status" -ne 0 ] || ! grep -q "resumed from the checkpoint after step 4" "$work/latest.out"; then
  fail "latest as a FIFO: status $status (124: it hung), expected 0 and a resume from step 4:"
  tail -5 "$work/latest.out"
else
  echo "ok   latest as a FIFO: not opened, resumed from step 4"
fi
rm -f "$run/checkpoints/step_000000006.h5" "$run/checkpoints/step_000000004.h5"
mkfifo "$run/checkpoints/step_000000004.h5"
timeout 120 "$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="$run" \
  --set train.steps=6 >"$work/step.out" 2>&1
status=$?
if [ "$status" -ne 0 ] || ! grep -q "resumed from the checkpoint after step 2" "$work/step.out"; then
  fail "a step file as a FIFO: status $status, expected 0 and a resume from step 2:"
  tail -5 "$work/step.out"
else
  echo "ok   step_000000004.h5 as a FIFO: passed over, resumed from step 2"
fi

# A token shard replaced by a FIFO: refused before any work.
printf 'To be, or not to be, that is the question.\n%.0s' $(seq 200) >"$work/text.txt"
"$tessera" prepare "$work/text.txt" -o "$work/data" >/dev/null 2>&1 || { fail "prepare"; exit 1; }
shard=$(ls "$work"/data/train_*.bin | head -1)
rm "$shard" && mkfifo "$shard"
timeout 120 "$tessera" train "$configs/tiny.toml" "${common[@]}" --set run.dir="$work/datarun" \
  --set data.source="$work/data" --set train.steps=2 >"$work/shard.out" 2>"$work/shard.err"
status=$?
if [ "$status" -ne 2 ] || ! grep -q "is not a regular file" "$work/shard.err"; then
  fail "a shard as a FIFO: status $status (124: it hung), expected 2 and 'is not a regular file':"
  cat "$work/shard.err"
else
  echo "ok   a shard as a FIFO: $(cat "$work/shard.err")"
fi

# A step long enough (a wide model on the CPU) that the first SIGTERM cannot be acted on soon:
# the second, a few seconds later, ends the process at once.
"$tessera" train "$configs/tiny.toml" --set eval.every=0 --set log.progress='"plain"' \
  --set train.warmup_steps=2 --set run.dir="$work/long" --set train.steps=5 \
  --set model.d_model=1536 --set model.n_heads=12 --set model.n_layers=8 --set model.seq_len=256 \
  --set train.micro_batch=16 --set train.global_batch=16 >"$work/long.out" 2>&1 &
pid=$!
for _ in $(seq 600); do  # the announcement comes just before the first step
  grep -q "^layout " "$work/long.out" && break
  sleep 0.1
done
sleep 1
kill -TERM "$pid"
sleep 2
started=$SECONDS
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  fail "a second SIGTERM left the run going for 10 s"
else
  wait "$pid"
  status=$?
  pid=
  if grep -q "^step 1 |" "$work/long.out"; then
    fail "the first step ended within 3 s, before the second SIGTERM: widen the model here"
  elif [ "$status" -ne 143 ] || ! grep -q "a second SIGTERM: ending now" "$work/long.out"; then
    fail "second SIGTERM: status $status, expected 143 and the line:"
    tail -5 "$work/long.out"
  else
    echo "ok   a second SIGTERM ended the run in $((SECONDS - started)) s (status 143)"
  fi
fi
exit $((failures > 0))
