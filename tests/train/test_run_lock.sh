#!/usr/bin/env bash
# One run per run.dir: a second run started in the directory of a live one is refused (exit 2,
# one line naming the holder) before it writes anything there; once the first is gone, even
# killed with SIGKILL, the directory is free again. Signals only the process it started.
# Usage: test_run_lock.sh TESSERA_BINARY CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
first=
cleanup() {
  [ -n "$first" ] && kill -KILL "$first" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
run=(--set run.dir="$work/run" --set eval.every=0 --set log.progress='"plain"'
  --set train.warmup_steps=2)

# The first run: long enough to still be training when the second one starts.
"$tessera" train "$configs/tiny.toml" "${run[@]}" --set train.steps=1000000 >"$work/first.out" 2>&1 &
first=$!
for _ in $(seq 600); do  # its metrics.jsonl exists once it holds the lock; up to 60 s on a busy host
  [ -s "$work/run/metrics.jsonl" ] && break
  kill -0 "$first" 2>/dev/null || break
  sleep 0.1
done
[ -s "$work/run/metrics.jsonl" ] || { fail "the first run did not start:"; cat "$work/first.out"; exit 1; }
lines_before=$(wc -l <"$work/run/metrics.jsonl")

"$tessera" train "$configs/tiny.toml" "${run[@]}" --set train.steps=3 >"$work/second.out" 2>"$work/second.err"
status=$?
if [ "$status" -ne 2 ] || [ "$(wc -l <"$work/second.err")" -ne 1 ] ||
  ! grep -q "is in use by another tessera run (process $first on " "$work/second.err"; then
  fail "second run in the same run.dir: status $status, expected 2 and one line naming process $first:"
  cat "$work/second.err"
else
  echo "ok   second run refused: $(cat "$work/second.err")"
fi
grep -q '^step ' "$work/second.out" && fail "the refused run trained"
grep -q '"kind":"run"' <(tail -n +$((lines_before + 1)) "$work/run/metrics.jsonl" | grep -v '"kind":"train"') &&
  fail "the refused run wrote into metrics.jsonl"

kill -KILL "$first"
wait "$first" 2>/dev/null
first=
if "$tessera" train "$configs/tiny.toml" "${run[@]}" --set train.steps=3 >"$work/third.out" 2>&1; then
  echo "ok   after the first run was killed, the directory is free"
else
  fail "a run after the holder was killed:"
  cat "$work/third.out"
fi
exit $((failures > 0))
