#!/usr/bin/env bash
# Sweeps and long runs. (1) A job array over two layouts: each task trains its layout in its own
# run.dir. (2) A chain of two jobs (--chain 2, afterok): the first is told to stop (USR1), ends
# without requeueing, the second starts after it and resumes; the final parameters equal an
# uninterrupted run's.
# Usage: test_array_chain.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
quick=(--set train.steps=20 --set train.warmup_steps=2 --set train.micro_batch=8 --set eval.every=0
       --set log.every=10 --set log.progress=plain)
array=$("$tessera" slurm "$configs/tiny.toml" --nodes 1 --tasks-per-node 2 --time 00:05:00 \
  "${quick[@]}" --set run.dir="$work/sweep" --layout tp=2 --layout tp=1 --submit 2>array.err)
[ -n "$array" ] || fail "array submission failed: $(cat array.err)"

settings=(--set train.steps=400 --set train.warmup_steps=2 --set eval.every=0 --set log.every=10
          --set log.progress=plain)
"$tessera" train "$configs/tiny.toml" "${settings[@]}" --set run.dir="$work/reference" \
  >reference.log 2>&1 &
reference=$!
mapfile -t chain < <("$tessera" slurm "$configs/tiny.toml" --nodes 1 --tasks-per-node 1 \
  --time 00:05:00 "${settings[@]}" --set run.dir="$work/chain" --submit --chain 2 2>chain.err)
[ "${#chain[@]}" = 2 ] || { fail "chain submission gave '${chain[*]}': $(cat chain.err)"; finish ""; }
[ "$(job_field "${chain[1]}" Dependency)" = "afterok:${chain[0]}(unfulfilled)" ] ||
  fail "job ${chain[1]} does not depend on ${chain[0]}: $(job_field "${chain[1]}" Dependency)"
wait_for_line chain/metrics.jsonl '"step":50,' 60 || fail "chain job ${chain[0]} did not reach step 50"
scancel --signal=USR1 --batch "${chain[0]}"
first=$(wait_job_end "${chain[0]}" 60)
second=$(wait_job_end "${chain[1]}" 120)
wait "$reference" || fail "the uninterrupted reference run failed: $(tail -3 reference.log)"

[ "$first" = COMPLETED ] && [ "$second" = COMPLETED ] ||
  fail "chain jobs ended $first and $second, expected COMPLETED twice"
[ "$(job_field "${chain[0]}" Restarts)" = 0 ] || fail "chain job ${chain[0]} was requeued"
grep -q "the next job of the chain resumes it" "chain/slurm/tiny-${chain[0]}.out" ||
  fail "chain job ${chain[0]} did not hand on"
grep -q "resumed from the checkpoint" "chain/slurm/tiny-${chain[1]}-r0.out" ||
  fail "chain job ${chain[1]} did not resume"
expected=$(final_checksum reference)
got=$(final_checksum chain)
[ -n "$expected" ] && [ "$got" = "$expected" ] ||
  fail "final parameters after the chain $got, uninterrupted run $expected"

for task in 0 1; do
  state=$(wait_job_end "${array}_$task" 120)
  [ "$state" = COMPLETED ] || fail "array task $task ended $state"
done
for label in tp2 tp1; do
  [ -n "$(final_checksum "sweep/$label")" ] || fail "layout $label has no final record in sweep/$label"
done
grep -q "layout dp=1 tp=2 pp=1" sweep/slurm/tiny-"${array}"_0-r0.out || fail "array task 0 did not run tp=2"
grep -q "layout dp=2 tp=1 pp=1" sweep/slurm/tiny-"${array}"_1-r0.out || fail "array task 1 did not run dp=2"
finish "array over 2 layouts; chain of 2 jobs handed on and matched the uninterrupted run ($got)"
