#!/usr/bin/env bash
# A job whose time limit (one minute, Slurm's smallest) is shorter than its training: no signal
# is sent (--signal-grace 0); the trainer reads the job's end from Slurm, stops with a
# checkpoint and exit 75 while run.stop_margin_s remain, the script requeues the job, and it
# goes on like that until the run is finished, with exactly the parameters of an uninterrupted
# run. The job never reaches its limit (its state is COMPLETED, not TIMEOUT).
# Usage: test_time_limit.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
settings=(--set train.steps=1200 --set train.warmup_steps=2 --set eval.every=0 --set log.every=50
          --set log.progress=plain --set checkpoint.keep=2)

# The uninterrupted reference runs first, alone, and sets the pace: each job run keeps all but
# a quarter of the reference's duration as its stop margin, so the job stops about four times
# whatever this machine's speed (a fixed margin stopped nothing once training got faster).
begin=$EPOCHREALTIME
"$tessera" train "$configs/tiny.toml" "${settings[@]}" --set run.dir="$work/reference" \
  >reference.log 2>&1 || fail "the uninterrupted reference run failed: $(tail -3 reference.log)"
margin=$(awk -v begin="$begin" -v end="$EPOCHREALTIME" \
  'BEGIN { run = (end - begin) / 4; if (run < 3) run = 3; printf "%.1f", 60 - run }')
awk -v margin="$margin" 'BEGIN { exit !(margin >= 10) }' ||
  { fail "the reference run took too long for a one-minute job to stop several times"; finish ""; }

job=$("$tessera" slurm "$configs/tiny.toml" --nodes 1 --tasks-per-node 1 --time 00:01:00 \
  --signal-grace 0 "${settings[@]}" --set run.stop_margin_s="$margin" --set run.dir="$work/run" \
  --submit 2>submit.err)
[ -n "$job" ] || { fail "submission failed: $(cat submit.err)"; finish ""; }
log=run/slurm/tiny-$job.out
restarts=0
for _ in $(seq 16); do  # release each requeue at once instead of after Slurm's ~2 minutes
  release_requeued "$job" $((restarts + 1)) 60 || break
  restarts=$((restarts + 1))
done
state=$(wait_job_end "$job" 120)

[ "$state" = COMPLETED ] || fail "job $job ended $state, expected COMPLETED"
[ "$restarts" -ge 1 ] || fail "job $job was never requeued: the time-limit stop did not happen"
[ "$(job_field "$job" Restarts)" = "$restarts" ] || fail "Slurm counts $(job_field "$job" Restarts) restarts, the test released $restarts"
grep -q "got SIGUSR1" "$log" && fail "USR1 reached the batch shell; this test is about the trainer's own stop"
[ "$(grep -c "stopped early after a checkpoint (exit 75): scontrol requeue $job" "$log")" = "$restarts" ] ||
  fail "not every restart followed an exit 75"
grep -q "training finished (exit 0)" "$log" || fail "the last run did not finish"
grep -q "resumed from the checkpoint" "run/slurm/tiny-$job-r1.out" || fail "restart 1 did not resume from the checkpoint"
expected=$(final_checksum reference)
got=$(final_checksum run)
[ -n "$expected" ] && [ "$got" = "$expected" ] ||
  fail "final parameters after $restarts time-limit stops $got, uninterrupted run $expected"
finish "$restarts time-limit stops (exit 75, requeue, resume); final parameters bitwise equal ($got)"
