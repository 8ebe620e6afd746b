#!/usr/bin/env bash
# A training job submitted with the generated script is sent USR1 (`scancel --signal=USR1
# --batch`, what Slurm's --signal=B:USR1@grace does before the time limit): the batch shell
# forwards it to the ranks through srun, they checkpoint and exit 75, the script requeues the
# job, it resumes from the checkpoint as restart 1 and ends with exactly the parameters of an
# uninterrupted run of the same configuration.
# With NODES (default 1) on the multi-node test cluster, the job spans that many nodes of one
# rank each (dp = NODES, deterministic mode: the same model as one process).
# Usage: test_requeue_signal.sh TESSERA CONFIG_DIR CLUSTER_DIR [NODES]
tessera=$1 configs=$2 cluster=$3 nodes=${4:-1}
. "$(dirname "$0")/lib.sh"
settings=(--set train.steps=400 --set train.warmup_steps=2 --set eval.every=0 --set log.every=10
          --set log.progress=plain --set checkpoint.keep=2 --set train.micro_batch=4
          --set parallel.deterministic=true)

"$tessera" train "$configs/tiny.toml" "${settings[@]}" --set run.dir="$work/reference" \
  >reference.log 2>&1 &
reference=$!

job=$("$tessera" slurm "$configs/tiny.toml" --nodes "$nodes" --tasks-per-node 1 --time 00:10:00 \
  "${settings[@]}" --set run.dir="$work/run" --submit 2>submit.err)
[ -n "$job" ] || { fail "submission failed: $(cat submit.err)"; finish ""; }
log=run/slurm/tiny-$job.out
wait_for_line run/metrics.jsonl '"step":50,' 60 || fail "job $job did not reach step 50"
scancel --signal=USR1 --batch "$job"
release_requeued "$job" 1 60 || fail "job $job was not requeued after USR1"
state=$(wait_job_end "$job" 120)
wait "$reference" || fail "the uninterrupted reference run failed: $(tail -3 reference.log)"

[ "$state" = COMPLETED ] || fail "job $job ended $state, expected COMPLETED"
[ "$(job_field "$job" Restarts)" = 1 ] || fail "job $job restarted $(job_field "$job" Restarts) times, expected 1"
grep -q "got SIGUSR1: asking the ranks to checkpoint and stop" "$log" || fail "the batch shell did not forward USR1"
grep -q "stopped early after a checkpoint (exit 75): scontrol requeue $job" "$log" ||
  fail "the script did not requeue on exit 75"
grep -q "training finished (exit 0)" "$log" || fail "the restarted run did not finish"
grep -q "step 400/400" "run/slurm/tiny-$job-r0.out" && fail "restart 0 ran to the end: the signal did not stop it"
grep -q "resumed from the checkpoint" "run/slurm/tiny-$job-r1.out" || fail "restart 1 did not resume from the checkpoint"
expected=$(final_checksum reference)
got=$(final_checksum run)
[ -n "$expected" ] && [ "$got" = "$expected" ] ||
  fail "final parameters after the requeue $got, uninterrupted run $expected"
finish "$nodes node(s): USR1 -> checkpoint, exit 75, requeue, resume; final parameters bitwise equal ($got)"
