#!/usr/bin/env bash
# A model that does not fit in memory never dies in std::bad_alloc or the OOM killer:
#  - planned: the memory plan (src/plan) exceeds what a rank has, so the run is refused before
#    any work with one line, printed once, naming the largest part and a layout that fits when
#    one does (exit status 2);
#  - unplanned: the plan fits but the allocator still refuses (here a `ulimit -v` the plan does
#    not know of, as a co-tenant's memory would): one line per rank saying how much was asked
#    for, how much is free and what to change (exit status 1); under 2 ranks the whole job ends.
# Usage: test_out_of_memory.sh TESSERA_BINARY CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
failures=0

fail() {
  echo "FAIL $1: status $status:"
  cat "$work/err"
  failures=$((failures + 1))
}

# $1 ranks, then settings: runs tessera train on tiny.toml with them; sets status.
run() {
  local ranks=$1
  shift
  local args=()
  for setting in "$@"; do args+=(--set "$setting"); done
  timeout 120 mpiexec -n "$ranks" --oversubscribe "$tessera" train "$configs/tiny.toml" \
    --set eval.every=0 --set run.dir="$work/run" "${args[@]}" >"$work/out" 2>"$work/err"
  status=$?
}

# 3000 GiB of parameters, gradients and AdamW moments per rank: nothing fits on 1 or 2 ranks.
huge=(model.n_layers=1000 model.d_model=4096 model.n_heads=32 train.micro_batch=4
  train.global_batch=8)
for ranks in 1 2; do
  run "$ranks" "${huge[@]}"
  lines=$(grep -c "^tessera: error: this layout needs .* GiB per rank on pipeline stage 0 but a rank has .* GiB (.* host memory available.*); the largest part is optimizer state (.*); no layout of this model and batch fits on $ranks rank(s)" "$work/err")
  if [ "$status" -ne 2 ] || [ "$lines" -ne 1 ]; then
    fail "planned, $ranks rank(s), $lines refusal line(s)"
  else
    echo "ok   planned, $ranks rank(s): $(head -c 200 "$work/err")..."
  fi
done

# Attention probabilities of 4 x 4 heads x 16384^2 tokens (16 GiB a layer): refused, and the
# refusal names a layout that fits, which then passes the check (it is not trained: at this
# sequence length a step takes minutes here).
long=(model.seq_len=16384 train.micro_batch=4 train.global_batch=8)
run 2 "${long[@]}"
suggestion=$(grep -o "a layout that fits (.* GiB): .*" "$work/err" | sed 's/^a layout that fits ([^)]*): //')
if [ "$status" -ne 2 ] || [ -z "$suggestion" ]; then
  fail "planned with a layout that fits"
else
  read -r -a fix <<<"$suggestion"
  settings=()
  for word in "${fix[@]}"; do [ "$word" != "--set" ] && settings+=("$word"); done
  run 2 "${long[@]}" "${settings[@]}" train.steps=1 train.warmup_steps=1 debug.stall_at_step=1 train.hang_timeout_s=1
  # Past the memory check, the run reaches step 1, where the debug stall ends it (exit 4).
  if [ "$status" -ne 4 ] || grep -q "this layout needs" "$work/err"; then
    fail "the suggested layout ($suggestion)"
  else
    echo "ok   planned: the suggested layout ($suggestion) passes the check and starts"
  fi
fi

# The plan fits (about 2.5 GiB a rank), a 2 GB address-space limit does not.
for ranks in 1 2; do
  (
    ulimit -v 2000000
    run "$ranks" model.n_layers=12 model.d_model=1024 model.n_heads=16 train.micro_batch=4 \
      train.global_batch=8
    exit "$status"
  )
  status=$?
  if [ "$status" -ne 1 ] ||
    ! grep -q "^tessera: rank [0-9] of $ranks: error: cannot allocate .* GiB of host memory (.* GiB free there): .*parallel.tp" "$work/err" ||
    grep -q "internal error" "$work/err"; then
    fail "unplanned, $ranks rank(s)"
  else
    echo "ok   unplanned, $ranks rank(s): $(grep -m1 'error: cannot allocate' "$work/err")"
  fi
done
exit $((failures > 0))
