#!/usr/bin/env bash
# What data.verify = "open" costs before the first step, beside the page cache's read bandwidth:
# prepares a corpus of GB gigabytes of token payload (byte tokenizer, 2 bytes per token) from
# repeated copies of TEXT, reads its shards once with cat (the file system's bandwidth, warm
# cache), then starts a 1-step run on 1 and on RANKS ranks with data.verify open and off and
# prints the checksum line each start logs and the start's wall time.
# usage: bench/bench_data_verify.sh TESSERA TEXT [GB (default 4; fractions work)] [RANKS (default 2)] [WORK_DIR]
set -euo pipefail
tessera=$1
text=$2
gigabytes=${3:-4}
ranks=${4:-2}
work=${5:-$(mktemp -d)}
mkdir -p "$work"
cores=$(nproc)  # before OMP_NUM_THREADS, which nproc obeys
configs=$(cd "$(dirname "$0")/../configs" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

seconds() { date +%s.%N; }
elapsed() { awk -v now="$(seconds)" -v start="$1" 'BEGIN { printf "%.2f", now - start }'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $cores cores;" \
  "tessera $("$tessera" --version | cut -d' ' -f2), $(date -u +%Y-%m-%dT%H:%MZ)"
corpus="$work/corpus"
if [ ! -f "$corpus/dataset.json" ]; then
  bytes=$(awk -v gb="$gigabytes" 'BEGIN { printf "%d", gb * 1e9 / 2 }')  # text: a uint16 token a byte
  copies=$((bytes / $(stat -c %s "$text") + 1))
  for _ in $(seq "$copies"); do cat "$text"; done >"$work/text.txt"
  truncate -s "$bytes" "$work/text.txt"
  start=$(seconds)
  "$tessera" prepare "$work/text.txt" -o "$corpus" --val-fraction 0.01 >/dev/null
  echo "prepare: $(du -sh "$corpus" | cut -f1) in $(ls "$corpus"/*.bin | wc -l) shards, $(elapsed "$start") s"
  rm "$work/text.txt"
fi
payload=$(cat "$corpus"/*.bin | wc -c)
for pass in 1 2; do
  start=$(seconds)
  cat "$corpus"/*.bin >/dev/null
  took=$(elapsed "$start")
  echo "cat of the shards (pass $pass): $(awk -v b="$payload" -v s="$took" 'BEGIN { printf "%.2f", b / 1e9 / s }') GB/s"
done

# start_run RANKS VERIFY: the wall time of a 1-step run and its "data: checked" line.
start_run() {
  local launch=()
  [ "$1" -gt 1 ] && launch=(mpiexec -n "$1" --oversubscribe)
  local start
  start=$(seconds)
  "${launch[@]}" "$tessera" train "$configs/tiny.toml" --set data.source="$corpus" \
    --set data.verify="\"$2\"" --set train.steps=1 --set train.warmup_steps=0 --set eval.every=0 \
    --set train.micro_batch=4 --set log.progress=plain --set run.dir="$work/run-$1-$2" \
    >"$work/out" 2>&1
  echo "$1 rank(s), data.verify = $2: start to end $(elapsed "$start") s;" \
    "$(grep -o 'data: checked.*' "$work/out" || echo 'nothing checked')"
  rm -rf "$work/run-$1-$2"
}
for round in 1 2; do
  for count in 1 "$ranks"; do
    start_run "$count" off
    start_run "$count" open
  done
done
