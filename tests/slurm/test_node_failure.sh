#!/usr/bin/env bash
# A node of a running 2-node job dies (every process in its network namespace killed: slurmd,
# the step daemon, two ranks). Within 60 s the job's surviving rank 0 ends it with one line
# naming the stuck ranks and their node (the hang watchdog, train.hang_timeout_s = 20; Slurm
# itself would notice only after SlurmdTimeout), and the newest checkpoint written before is
# intact (it loads and verifies). The node is brought back for the tests after this one.
# Usage: test_node_failure.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
cluster_script=$(cd "$(dirname "$0")/../../scripts/slurm" && pwd)/test-cluster.sh
. "$(dirname "$0")/lib.sh"
node_ns=$(awk '$1 == "netns" && $2 ~ /-n2$/ {print $2}' "$cluster/made")
[ -n "$node_ns" ] || { fail "no namespace of node 2 recorded in $cluster/made"; finish ""; }

job=$("$tessera" slurm "$configs/tiny.toml" --nodes 2 --tasks-per-node 2 --time 00:10:00 \
  --set train.steps=100000 --set train.warmup_steps=2 --set train.micro_batch=4 \
  --set checkpoint.every=50 --set eval.every=0 --set log.every=50 --set log.progress=plain \
  --set train.hang_timeout_s=20 --set run.dir="$work/run" --submit 2>submit.err)
[ -n "$job" ] || { fail "submission failed: $(cat submit.err)"; finish ""; }
wait_for_line run/checkpoints/latest 'step_000000100' 120 ||
  fail "job $job did not write the checkpoint of step 100"
kill_time=$(date +%s)
# Only what this test's cluster runs in node 2's namespace: its slurmd and this job's processes.
ip netns pids "$node_ns" | xargs -r kill -KILL
wait_for_line "run/slurm/tiny-$job-r0.err" 'hang: ' 60 ||
  fail "no hang line within 60 s of killing node 2: $(tail -3 "run/slurm/tiny-$job-r0.err")"
took=$(($(date +%s) - kill_time))
scancel "$job"
wait_job_end "$job" 60 >/dev/null
hang=$(grep 'hang: ' "run/slurm/tiny-$job-r0.err" | head -1)
case $hang in
  *"rank 0 of 4: hang: "*"stuck: ranks 2-3 on tsnode2 "*"look at tsnode2 (ranks 2-3)"*) ;;
  *) fail "the hang line does not name ranks 2-3 on tsnode2: $hang" ;;
esac
latest=run/checkpoints/$(cat run/checkpoints/latest)
"$tessera" eval "$latest" --windows 8 --set train.micro_batch=4 >eval.log 2>&1 ||
  fail "the newest checkpoint $latest does not load: $(tail -2 eval.log)"
"$cluster_script" node-up "$cluster" 2 >node-up.log 2>&1 ||
  fail "node 2 did not come back: $(tail -2 node-up.log)"
finish "node 2 killed: the job ended after $took s naming ranks 2-3 on tsnode2; $latest intact"
