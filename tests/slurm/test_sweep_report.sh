#!/usr/bin/env bash
# A scaling study on the real Slurm: `tessera sweep` over 1, 2, 4 and 8 ranks (data parallel at
# every size, tp=2 x pp=2 where it divides) submits one job array per size; the 8-rank job is
# cancelled at once, so its points never finish. `tessera report` must then list every point:
# the finished ones with exactly the figures of their result.json, the cancelled ones as failed
# or missing (never dropped), with the planner's prediction beside each, and draw the plots. A
# second sweep into the same directory is refused before anything is submitted; the sweep's
# finished points calibrate a hardware profile.
# Usage: test_sweep_report.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
sweep=(sweep "$configs/tiny.toml" --nodes 1 --tasks-per-node 1,2,4,8 --time 00:05:00
       --layouts "tp=1,pp=1;tp=2,pp=2" --steps 4 --hardware cpu-2core-avx512
       --set model.n_layers=4 --set train.micro_batch=2)
mapfile -t jobs < <("$tessera" "${sweep[@]}" -o "$work/study" 2>sweep.err)
[ "${#jobs[@]}" = 4 ] || { fail "sweep submitted '${jobs[*]}', expected 4 arrays: $(cat sweep.err)"; finish ""; }
scancel "${jobs[3]}"
for job in "${jobs[@]:0:3}"; do
  state=$(wait_job_end "$job" 180)
  [ "$state" = COMPLETED ] || fail "array $job ended $state"
done
wait_job_end "${jobs[3]}" 60 >/dev/null

"$tessera" report "$work/study" >report.out 2>report.err || fail "tessera report failed: $(cat report.err)"
/usr/bin/python3 - "$work/study" <<'PY' || fail "the report does not match the points"
import csv, json, os, sys
study = sys.argv[1]
rows = {r["label"]: r for r in csv.DictReader(open(os.path.join(study, "report.csv")))}
points = json.load(open(os.path.join(study, "sweep.json")))["points"]
labels = [p["label"] for p in points]
expected = ["1n1t-tp1-pp1", "1n2t-tp1-pp1", "1n4t-tp1-pp1", "1n4t-tp2-pp2", "1n8t-tp1-pp1", "1n8t-tp2-pp2"]
assert labels == expected, labels
assert sorted(rows) == sorted(expected), sorted(rows)
for point in points:
    row = rows[point["label"]]
    result = os.path.join(study, point["run_dir"], "result.json")
    if point["ranks"] == 8:
        assert row["status"] in ("failed", "missing") and row["detail"], row
        assert not os.path.exists(result), result
        continue
    measured = json.load(open(result))
    assert row["status"] == "ok", row
    for key, value in (("tokens_per_s", measured["tokens_per_s"]), ("mfu", measured["mfu"]),
                       ("step_s", measured["step_s"]["total"]),
                       ("peak_buffer_bytes", measured["peak_buffer_bytes"])):
        assert abs(float(row[key]) - value) <= 1e-5 * abs(value), (point["label"], key, row[key], value)
    assert float(row["predicted_tokens_per_s"]) > 0 and float(row["predicted_peak_bytes"]) > 0, row
    # The plan's memory is the allocator's peak.
    peak = measured["peak_buffer_bytes"]
    assert abs(float(row["predicted_peak_bytes"]) - peak) <= 1e-5 * peak, row
    # No checkpoint: a sweep point only times its steps.
    assert not os.listdir(os.path.join(study, point["run_dir"], "checkpoints")), point
assert float(rows["1n1t-tp1-pp1"]["efficiency"]) == 1.0
for plot in ("tokens_per_s", "efficiency", "mfu", "memory"):
    assert os.path.getsize(os.path.join(study, plot + ".png")) > 1000, plot
PY
grep -q "1n8t-tp1-pp1 \(failed\|missing\)" "$work/study/report.md" ||
  fail "report.md does not name the cancelled point: $(cat "$work/study/report.md")"

"$tessera" plan --calibrate "$work/study" --hardware cpu-2core-avx512 -o fitted.toml >fit.out 2>&1 &&
  grep -q "from 4 run(s)" fit.out || fail "calibrating from the sweep: $(cat fit.out)"

"$tessera" "${sweep[@]}" -o "$work/study" >again.out 2>again.err
status=$?
[ "$status" = 2 ] && grep -q "holds another sweep" again.err && [ ! -s again.out ] ||
  fail "a second sweep into the same directory: status $status, $(cat again.err)"
finish "6 points over 1-8 ranks; 4 reported with their results, the cancelled 8-rank ones named"
