#!/usr/bin/env bash
# Elastic resume: a job of 4 nodes x 2 ranks (tp 2, parallel.dp = auto, so dp 4) loses node 4
# after its first checkpoint. It was written with --min-nodes 3; resubmitted while node 4 is
# down, Slurm starts it on the 3 nodes left: dp 3, train.global_batch 12 kept in microbatches
# of 2 instead of 3, resumed from the checkpoint. Proven: the log says what changed (one note
# line, the layout beside the changed settings), the manifest records it, and the losses after
# the resume continue the uninterrupted 4-node run's (mpiexec, 8 ranks): the same samples in
# every step, only the order of the sums differs. Within 1e-5 for the first 200 steps after the
# resume (measured: about 1e-7), within 1e-4 to the end (float32 rounding differences grow
# slowly with the steps: measured 2e-5 after 1900).
# Usage: test_elastic_resume.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
cluster_script=$(cd "$(dirname "$0")/../../scripts/slurm" && pwd)/test-cluster.sh
. "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # the mpiexec reference, as root
node_ns=$(awk '$1 == "netns" && $2 ~ /-n4$/ {print $2}' "$cluster/made")
[ -n "$node_ns" ] || { fail "no namespace of node 4 recorded in $cluster/made"; finish ""; }

settings=(--set parallel.dp=auto --set parallel.tp=2 --set train.global_batch=12
  --set train.micro_batch=3 --set train.steps=1000 --set train.warmup_steps=2
  --set checkpoint.every=100 --set eval.every=0 --set log.every=10 --set log.progress=plain
  --set train.hang_timeout_s=20)
mpiexec -n 8 --oversubscribe "$tessera" train "$configs/tiny.toml" "${settings[@]}" \
  --set run.dir="$work/reference" >reference.log 2>&1 &
reference=$!

job=$("$tessera" slurm "$configs/tiny.toml" --nodes 4 --min-nodes 3 --tasks-per-node 2 \
  --time 00:10:00 "${settings[@]}" --set run.dir="$work/run" --submit 2>submit.err)
[ -n "$job" ] || { fail "submission failed: $(cat submit.err)"; finish ""; }
grep -q '^#SBATCH --nodes=3-4$' run/slurm/tiny.sbatch || fail "the script does not ask for 3-4 nodes"
wait_for_line run/checkpoints/latest 'step_' 120 || fail "job $job wrote no checkpoint"
[ "$(job_field "$job" NumNodes)" = 4 ] || fail "job $job started on $(job_field "$job" NumNodes) nodes, not 4"
# Node 4 dies: every process in its namespace (its slurmd, this job's step daemon and ranks).
# It comes back when the test ends, whichever way, for the tests after this one.
trap '"$cluster_script" node-up "$cluster" 4 >node-up.log 2>&1 || echo "FAIL: node 4 did not come back"' EXIT
ip netns pids "$node_ns" | xargs -r kill -KILL
scontrol update NodeName=tsnode4 State=DOWN Reason="killed by test_elastic_resume"
# Slurm ends the job and requeues it (--requeue) at the 4 nodes it had, which it cannot get
# now; the user resubmits the script instead, which may start on 3.
for _ in $(seq 150); do
  case $(job_field "$job" JobState) in RUNNING | COMPLETING | CONFIGURING) sleep 0.2 ;; *) break ;; esac
done
scancel "$job"
wait_job_end "$job" 60 >/dev/null
resumed_from=$(sed -n 's/^step_0*\([0-9]*\)\.h5$/\1/p' run/checkpoints/latest)
[ -n "$resumed_from" ] && [ "$resumed_from" -lt 1000 ] ||
  { fail "the first job finished before node 4 was killed (latest: $(cat run/checkpoints/latest))"; finish ""; }
second=$(sbatch --parsable run/slurm/tiny.sbatch 2>sbatch.err) ||
  { fail "resubmitting failed: $(cat sbatch.err)"; finish ""; }
state=$(wait_job_end "$second" 240)
[ "$state" = COMPLETED ] || fail "the resubmitted job $second ended $state"
[ "$(job_field "$second" NumNodes)" = 3 ] || fail "job $second ran on $(job_field "$second" NumNodes) nodes, not 3"
wait "$reference" || fail "the uninterrupted reference failed: $(tail -3 reference.log)"

log=run/slurm/tiny-$second-r0.out
grep -q "^note: train.micro_batch 3 -> 2: parallel.dp = auto gives dp = 3 on these ranks, and train.global_batch = 12 is kept (2 microbatches of 2 per replica per step)$" "$log" ||
  fail "no note of the microbatch change in $log"
grep -q "^note: .*layout dp=4 tp=2 pp=1 -> dp=3 tp=2 pp=1" "$log" || fail "no layout change in $log"
grep -q "^resumed from the checkpoint after step $resumed_from " "$log" ||
  fail "$log does not say it resumed after step $resumed_from"
/usr/bin/python3 - run reference "$resumed_from" <<'PY' || fail "the resumed run does not continue the uninterrupted one"
import json, sys
run, reference, resumed_from = sys.argv[1], sys.argv[2], int(sys.argv[3])

def losses(directory):
    with open(f"{directory}/metrics.jsonl") as lines:
        return {r["step"]: r["loss"] for r in map(json.loads, lines) if r.get("kind") == "train"}

resumed, uninterrupted = losses(run), losses(reference)
after = [step for step in sorted(uninterrupted) if step > resumed_from]
missing = [step for step in after if step not in resumed]
def worst(steps):
    return max(abs(resumed[step] - uninterrupted[step]) for step in steps if step in resumed)

near = [step for step in after if step <= resumed_from + 200]
restart = json.load(open(f"{run}/manifest.json"))["restarts"][-1]
changes = {c["key"]: (c["checkpoint"], c["now"]) for c in restart["changed_settings"]}
print(f"{len(after)} losses after step {resumed_from}: largest difference {worst(near):.2e} in "
      f"the first 200 steps, {worst(after):.2e} in all")
ok = not missing and worst(near) <= 1e-5 and worst(after) <= 1e-4 and restart["layout"]["dp"] == 3
ok = ok and changes.get("layout") == ("dp=4 tp=2 pp=1", "dp=3 tp=2 pp=1")
ok = ok and changes.get("train.micro_batch") == ("3", "2")
if not ok:
    print(f"missing steps {missing[:5]}, manifest restart {restart['layout']}, changes {changes}")
sys.exit(0 if ok else 1)
PY
trap - EXIT
"$cluster_script" node-up "$cluster" 4 >node-up.log 2>&1 ||
  fail "node 4 did not come back: $(tail -2 node-up.log)"
finish "node 4 lost after step $resumed_from; resubmitted on 3 nodes (dp 4 -> 3, micro_batch 3 -> 2), losses continue the uninterrupted run's"
