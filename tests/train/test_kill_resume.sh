#!/usr/bin/env bash
# A run killed with SIGKILL at random moments (inside checkpoint writes too: it saves every
# step) and restarted each time must end with exactly the parameters of an uninterrupted run.
# Each attempt is killed a random 0-200 ms after it has written a checkpoint of its own (so
# that it resumed and made progress, however busy the machine), never by the clock alone.
# Usage: test_kill_resume.sh TESSERA CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
settings=(--set train.steps=400 --set train.warmup_steps=2 --set eval.every=0 --set log.every=1
          --set log.progress=plain --set checkpoint.every=1 --set checkpoint.keep=2)

checksum() { grep '"kind":"final"' "$1/metrics.jsonl" | tail -1 | sed 's/.*"parameter_checksum":"\([0-9a-f]*\)".*/\1/'; }

"$tessera" train "$configs/tiny.toml" "${settings[@]}" --set run.dir="$work/straight" >/dev/null 2>&1 ||
  { echo "FAIL: the uninterrupted run failed"; exit 1; }
expected=$(checksum "$work/straight")

# saves: the checkpoint records in the killed run's metrics.jsonl (every attempt appends to it).
saves() { cat "$work/killed/metrics.jsonl" 2>/dev/null | grep -c '"kind":"checkpoint"'; }
kills=0
for attempt in $(seq 8); do
  before=$(saves)
  "$tessera" train "$configs/tiny.toml" "${settings[@]}" --set run.dir="$work/killed" \
    >"$work/log.$attempt" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do  # up to 120 s for this attempt's first save on a loaded machine
    [ "$(saves)" -gt "$before" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.2 * r / 32768 }')"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
done
"$tessera" train "$configs/tiny.toml" "${settings[@]}" --set run.dir="$work/killed" \
  >"$work/log.final" 2>&1 || { echo "FAIL: the run did not resume after $kills kills:"; tail -5 "$work/log.final"; exit 1; }
got=$(checksum "$work/killed")
resumes=$(grep -h -c "resumed from the checkpoint" "$work"/log.* | awk '{s += $1} END {print s + 0}')
if [ -z "$expected" ] || [ "$got" != "$expected" ]; then
  echo "FAIL: after $kills kills and $resumes resumes the final parameters are $got, uninterrupted $expected"
  exit 1
fi
if [ "$kills" -lt 3 ] || [ "$resumes" -lt 3 ]; then
  echo "FAIL: only $kills kills and $resumes resumes happened: the test did not exercise recovery"
  exit 1
fi
echo "ok: killed $kills times ($resumes resumes): final parameters bitwise equal to the uninterrupted run ($got)"
