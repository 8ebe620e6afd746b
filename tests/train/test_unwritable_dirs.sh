#!/usr/bin/env bash
# Directories a run cannot write, on real file systems: a tmpfs remounted read-only and a full
# tmpfs as checkpoint.dir are refused before the first step (one line naming the directory and
# the cause, exit status 2, on 1 and on 2 ranks); a tmpfs under run.dir that fills up while
# metrics.jsonl grows leaves only whole records in it; a checkpoint.dir with room for one
# checkpoint stops the run at the second save with one line, the first checkpoint intact. Needs root to mount; exits 77 (skipped)
# where mounting is not allowed.
# Usage: test_unwritable_dirs.sh TESSERA_BINARY CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
mounts=()
cleanup() {
  for point in "${mounts[@]}"; do umount "$point" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# mount_tmpfs DIR SIZE: a tmpfs of SIZE at DIR (made here), unmounted on exit.
mount_tmpfs() {
  mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" || return 1
  mounts+=("$1")
}
if ! mount_tmpfs "$work/probe" 64k; then
  echo "skipped: cannot mount a tmpfs here (needs root and mount rights)"
  exit 77
fi

small=(--set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set model.seq_len=32
       --set train.global_batch=4 --set train.micro_batch=2 --set eval.every=0 --set log.every=1
       --set log.progress=plain)

# expect_refused NAME WORD RANKS ARGS...: exit 2, one "tessera: error:" line holding WORD, no step.
expect_refused() {
  local name=$1 word=$2 ranks=$3
  shift 3
  local launch=()
  [ "$ranks" -gt 1 ] && launch=(mpiexec -n "$ranks" --oversubscribe)
  timeout 120 "${launch[@]}" "$tessera" train "$configs/tiny.toml" "${small[@]}" "$@" \
    >"$work/out" 2>"$work/err"
  local status=$? lines
  lines=$(grep -c "^tessera: error:" "$work/err")
  if [ "$status" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$word" "$work/err" ||
     grep -q "^step " "$work/out"; then
    fail "$name: status $status (want 2), $lines error lines (want 1) with '$word', steps: $(grep -c '^step ' "$work/out")"
    cat "$work/err"
  else
    echo "ok   $name: $(grep '^tessera: error:' "$work/err")"
  fi
}

mount_tmpfs "$work/readonly" 1m && mkdir "$work/readonly/checkpoints" &&
  mount -o remount,ro "$work/readonly" || fail "could not make the read-only tmpfs"
for ranks in 1 2; do
  expect_refused "read-only checkpoint.dir, $ranks rank(s)" "Read-only file system" "$ranks" \
    --set checkpoint.dir="$work/readonly/checkpoints" --set run.dir="$work/run-ro-$ranks"
done

mount_tmpfs "$work/full" 64k || fail "could not mount the full tmpfs"
dd if=/dev/zero of="$work/full/filler" bs=4k 2>/dev/null  # until the file system is full
expect_refused "full checkpoint.dir" "No space left on device" 1 \
  --set checkpoint.dir="$work/full/checkpoints" --set run.dir="$work/run-full"
expect_refused "run.dir on a full file system" "run.dir $work/full/run" 1 \
  --set run.dir="$work/full/run"

# run.dir fills up during the run: metrics.jsonl must hold only whole records afterwards.
mount_tmpfs "$work/filling" 48k || fail "could not mount the filling tmpfs"
timeout 300 "$tessera" train "$configs/tiny.toml" "${small[@]}" --set train.steps=100000 \
  --set run.dir="$work/filling/run" --set checkpoint.dir="$work/checkpoints" \
  >"$work/out" 2>"$work/err"
status=$?
metrics="$work/filling/run/metrics.jsonl"
if [ "$status" -ne 2 ] || ! grep -q "cannot append to '$metrics' (No space left on device)" "$work/err"; then
  fail "filling run.dir: status $status (want 2) without the line naming metrics.jsonl:"
  cat "$work/err"
elif ! /usr/bin/python3 - "$metrics" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
assert text.endswith("\n"), "the last record is cut off: %r" % text[-80:]
records = [json.loads(line) for line in text.splitlines()]
assert sum(r.get("kind") == "train" for r in records) > 10, "too few records: %d" % len(records)
print("ok   run.dir filled up after %d records of metrics.jsonl: every one whole" % len(records))
EOF
then
  fail "filling run.dir: metrics.jsonl holds a torn record"
fi

# checkpoint.dir fills up mid-run: room for one checkpoint of tiny (1.5 MB), not two. The second
# save is refused before HDF5 writes a byte (one line, exit 2, no crash at MPI_Finalize) and the
# first stays, `latest` at it; saved synchronously and asynchronously.
for async in false true; do
  mount_tmpfs "$work/room-$async" 2m || fail "could not mount the tmpfs for one checkpoint"
  timeout 120 "$tessera" train "$configs/tiny.toml" --set eval.every=0 --set log.progress=plain \
    --set train.warmup_steps=2 --set train.steps=6 --set checkpoint.every=2 \
    --set checkpoint.async="$async" --set run.dir="$work/run-room-$async" \
    --set checkpoint.dir="$work/room-$async/checkpoints" >"$work/out" 2>"$work/err"
  status=$?
  latest=$(cat "$work/room-$async/checkpoints/latest" 2>/dev/null)
  if [ "$status" -ne 2 ] || [ "$(grep -c '^tessera: error:' "$work/err")" -ne 1 ] ||
    ! grep -q "no space left on $work/room-$async/checkpoints" "$work/err" ||
    [ "$latest" != step_000000002.h5 ]; then
    fail "checkpoint.dir full at the second save (async $async): status $status (want 2), latest '$latest' (want step 2):"
    cat "$work/err"
  elif ! /usr/bin/python3 -c 'import h5py, sys; h5py.File(sys.argv[1]).close()' \
    "$work/room-$async/checkpoints/step_000000002.h5"; then
    fail "checkpoint.dir full (async $async): the step-2 checkpoint does not open"
  else
    echo "ok   checkpoint.dir full at the second save (async $async): $(grep '^tessera: error:' "$work/err")"
  fi
done

[ "$failures" -eq 0 ] || { echo "$failures unwritable-directory check(s) failed"; exit 1; }
