#!/usr/bin/env bash
# A model that does not fit in memory ends with one line per rank saying how much was asked for,
# how much is free and what to change (exit status 1), not "internal error: std::bad_alloc" or
# the OOM killer; under 2 ranks the whole job ends.
# Usage: test_out_of_memory.sh TESSERA_BINARY CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
failures=0
huge=(--set model.n_layers=1000 --set model.d_model=4096 --set model.n_heads=32
  --set eval.every=0 --set train.micro_batch=4 --set train.global_batch=8)
for ranks in 1 2; do
  timeout 120 mpiexec -n "$ranks" --oversubscribe "$tessera" train "$configs/tiny.toml" "${huge[@]}" \
    --set run.dir="$work/run$ranks" >"$work/out" 2>"$work/err"
  status=$?
  if [ "$status" -eq 0 ] || [ "$status" -eq 124 ] ||
    ! grep -q "^tessera: rank [0-9] of $ranks: error: cannot allocate .* GiB of host memory (.* GiB free there): .*parallel.tp" "$work/err" ||
    grep -q "internal error" "$work/err"; then
    echo "FAIL $ranks rank(s): status $status:"
    cat "$work/err"
    failures=$((failures + 1))
  else
    echo "ok   $ranks rank(s), status $status: $(grep -m1 'error: cannot allocate' "$work/err")"
  fi
done
exit $((failures > 0))
