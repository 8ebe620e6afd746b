#!/usr/bin/env bash
# A scaling study across nodes: `tessera sweep` over 1, 2 and 4 nodes of the test cluster, 2
# ranks each (tp=2 inside a node, dp = the nodes), one job array per size, in strong mode (the
# same global batch at every size) and in weak mode (the batch grows with the ranks). Every point
# must finish, run on as many distinct nodes as it asked for (the manifest's hosts), keep each
# tensor-parallel pair on one node, train the global batch its mode says, and appear in
# `tessera report` as ok with its figures and the planner's prediction beside them. (What the figures say about a real fabric: nothing;
# these nodes share two cores and talk TCP over veths. doc/slurm.md.)
# Usage: test_multinode_sweep.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
# sweep MODE: one study into $work/MODE, checked.
sweep() {
  local mode=$1 study=$work/$1 job state
  mapfile -t jobs < <("$tessera" sweep "$configs/tiny.toml" --nodes 1,2,4 --tasks-per-node 2 \
    --time 00:05:00 --layouts "tp=2,pp=1" --steps 4 --hardware cpu-2core-avx512 --mode "$mode" \
    --set train.micro_batch=2 --set train.global_batch=8 -o "$study" 2>"$mode.err")
  [ "${#jobs[@]}" = 3 ] || { fail "$mode: sweep submitted '${jobs[*]}', expected 3 arrays: $(cat "$mode.err")"; return; }
  for job in "${jobs[@]}"; do
    state=$(wait_job_end "$job" 180)
    [ "$state" = COMPLETED ] || fail "$mode: array $job ended $state"
  done
  "$tessera" report "$study" >"$mode-report.out" 2>"$mode-report.err" ||
    fail "$mode: tessera report failed: $(cat "$mode-report.err")"
  /usr/bin/python3 - "$study" "$mode" <<'PY' || fail "$mode: the points did not run as they asked, or the report lacks them"
import csv, json, os, sys
study, mode = sys.argv[1], sys.argv[2]
rows = {r["label"]: r for r in csv.DictReader(open(os.path.join(study, "report.csv")))}
points = json.load(open(os.path.join(study, "sweep.json")))["points"]
assert [p["label"] for p in points] == ["1n2t-tp2-pp1", "2n2t-tp2-pp1", "4n2t-tp2-pp1"], points
for point in points:
    row = rows[point["label"]]
    assert row["status"] == "ok" and int(row["nodes"]) == point["nodes"], row
    assert float(row["tokens_per_s"]) > 0 and float(row["predicted_tokens_per_s"]) > 0, row
    run = os.path.join(study, point["run_dir"])
    hosts = json.load(open(os.path.join(run, "manifest.json")))["hosts"]
    assert len(hosts) == point["ranks"] and len(set(hosts)) == point["nodes"], hosts
    assert all(hosts[r] == hosts[r + 1] for r in range(0, len(hosts), 2)), hosts  # tp pairs
    batch = int(next(line.split("=")[1] for line in open(os.path.join(run, "config.toml"))
                     if line.startswith("global_batch")))
    assert batch == (8 if mode == "strong" else 8 * point["nodes"]), (point["label"], batch)
    print(f'{mode} {point["label"]}: batch {batch}, {row["tokens_per_s"]} tokens/s on '
          f'{" ".join(sorted(set(hosts)))}, efficiency {row["efficiency"]}')
PY
  for plot in tokens_per_s efficiency mfu memory; do
    [ -s "$study/$plot.png" ] || fail "$mode: no $plot.png"
  done
}
sweep strong
sweep weak
finish "strong and weak sweeps over 1, 2 and 4 nodes: every point ran on its nodes with its batch and is in the report"
