#!/usr/bin/env bash
# A scaling study across nodes: `tessera sweep` over 1, 2 and 4 nodes of the test cluster, 2
# ranks each (tp=2 inside a node, dp = the nodes), one job array per size. Every point must
# finish, run on as many distinct nodes as it asked for (the manifest's hosts), keep each
# tensor-parallel pair on one node, and appear in `tessera report` as ok with its figures and
# the planner's prediction beside them. (What the figures say about a real fabric: nothing;
# these nodes share two cores and talk TCP over veths. doc/slurm.md.)
# Usage: test_multinode_sweep.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
mapfile -t jobs < <("$tessera" sweep "$configs/tiny.toml" --nodes 1,2,4 --tasks-per-node 2 \
  --time 00:05:00 --layouts "tp=2,pp=1" --steps 4 --hardware cpu-2core-avx512 \
  --set train.micro_batch=2 -o "$work/study" 2>sweep.err)
[ "${#jobs[@]}" = 3 ] || { fail "sweep submitted '${jobs[*]}', expected 3 arrays: $(cat sweep.err)"; finish ""; }
for job in "${jobs[@]}"; do
  state=$(wait_job_end "$job" 180)
  [ "$state" = COMPLETED ] || fail "array $job ended $state"
done
"$tessera" report "$work/study" >report.out 2>report.err || fail "tessera report failed: $(cat report.err)"
/usr/bin/python3 - "$work/study" <<'PY' || fail "the points did not run where they asked, or the report lacks them"
import csv, json, os, sys
study = sys.argv[1]
rows = {r["label"]: r for r in csv.DictReader(open(os.path.join(study, "report.csv")))}
points = json.load(open(os.path.join(study, "sweep.json")))["points"]
assert [p["label"] for p in points] == ["1n2t-tp2-pp1", "2n2t-tp2-pp1", "4n2t-tp2-pp1"], points
for point in points:
    row = rows[point["label"]]
    assert row["status"] == "ok" and int(row["nodes"]) == point["nodes"], row
    assert float(row["tokens_per_s"]) > 0 and float(row["predicted_tokens_per_s"]) > 0, row
    hosts = json.load(open(os.path.join(study, point["run_dir"], "manifest.json")))["hosts"]
    assert len(hosts) == point["ranks"] and len(set(hosts)) == point["nodes"], hosts
    assert all(hosts[r] == hosts[r + 1] for r in range(0, len(hosts), 2)), hosts  # tp pairs
    print(f'{point["label"]}: {row["tokens_per_s"]} tokens/s on {" ".join(sorted(set(hosts)))}')
PY
for plot in tokens_per_s efficiency mfu memory; do
  [ -s "$work/study/$plot.png" ] || fail "no $plot.png"
done
finish "a sweep over 1, 2 and 4 nodes: every point ran on its nodes and is in the report"
