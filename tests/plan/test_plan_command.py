"""`tessera plan` as a user runs it: the ranked table and its md, csv and json forms on a shipped
profile; calibration from a real run, whose profile the next plan reads; and every bad input as
one line with exit status 2 (an unknown profile key, an unknown profile, nodes < 1, a layout that
cannot divide the model, a precision the machine has no rate for). `tessera sweep --dry-run`
writes its sweep.json and job scripts without Slurm, and refuses the same kinds of bad input
and a directory that holds a sweep already, before writing anything.

usage: test_plan_command.py TESSERA CONFIG_DIR
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import tomllib

failures = []


def tessera(*args, env=None):
    return subprocess.run([TESSERA, *args], capture_output=True, text=True, timeout=300, env=env)


def check(name, condition, done=None):
    if condition:
        print("ok   " + name)
    else:
        failures.append(name)
        print("FAIL " + name + ("" if done is None else
                                ": status %d\n%s%s" % (done.returncode, done.stdout[-1500:],
                                                       done.stderr[-1500:])))


def refused(name, done, words):
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    check(name, done.returncode == 2 and len(lines) == 1 and lines[0].startswith("tessera: error: ")
          and all(w in lines[0] for w in words) and done.stdout == "", done)


def main():
    global TESSERA
    TESSERA, configs = sys.argv[1], sys.argv[2]
    gpt2 = os.path.join(configs, "gpt2-124m.toml")
    bench = os.path.join(configs, "bench-cpu.toml")
    h100 = ["--hardware", "h100-sxm-ndr400x8"]

    done = tessera("plan", gpt2, *h100, "--nodes", "4", "--top", "3", "--set", "train.precision=bf16")
    lines = done.stdout.splitlines()
    check("table: a summary and 3 ranked rows", done.returncode == 0 and "32 ranks" in lines[0]
          and "layouts fit" in lines[0] and sum(l.startswith(("1x", "2x", "4x", "8x", "16x", "32x"))
                                                for l in lines) >= 3, done)

    done = tessera("plan", gpt2, *h100, "--nodes", "2", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    fits = [r for r in rows if r["fits"] == "true"]
    speeds = [float(r["tokens_per_s"]) for r in fits]
    check("csv: every layout, those that fit fastest first",
          done.returncode == 0 and len(rows) > 50 and speeds == sorted(speeds, reverse=True)
          and all(int(r["dp"]) * int(r["tp"]) * int(r["pp"]) == 16 and int(r["tp"]) <= 8
                  for r in rows), done)

    done = tessera("plan", gpt2, *h100, "--nodes", "2", "--format", "json", "--tokens", "1e9")
    plan = json.loads(done.stdout) if done.returncode == 0 else {}
    first = plan.get("layouts", [{}])[0]
    check("json: the tokens asked for, the days they take",
          plan.get("tokens") == 1e9 and abs(first["days"] - 1e9 / first["tokens_per_s"] / 86400)
          < 1e-9 * first["days"] and first["memory_bytes"]["total"] > 0, done)

    done = tessera("plan", gpt2, *h100, "--format", "md", "--top", "2")
    check("md: a Markdown table", done.returncode == 0 and "| dp x tp x pp |" in done.stdout, done)

    with tempfile.TemporaryDirectory() as work:
        bad = os.path.join(work, "bad.toml")
        with open(os.path.join(configs, "..", "modules", "hardware", "a100-40gb-hdr200x4.toml")) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace("intra_node_gb_s", "intra_node_gbs"))
        refused("an unknown profile key", tessera("plan", gpt2, "--hardware", bad),
                ["bad.toml", "network.intra_node_gbs is not a key"])
        refused("an unknown profile", tessera("plan", gpt2, "--hardware", "no-such-machine"),
                ["hardware profile 'no-such-machine' not found", "h100-sxm-ndr400x8"])
        refused("nodes < 1", tessera("plan", gpt2, *h100, "--nodes", "0"), ["--nodes 0"])
        refused("a layout that cannot divide the model",
                tessera("plan", gpt2, *h100, "--as-configured", "--ranks-per-node", "5",
                        "--set", "parallel.tp=5"),
                ["parallel.tp = 5 does not divide model.n_heads = 12"])
        refused("a precision the machine has no rate for",
                tessera("plan", bench, "--hardware", "cpu-2core-avx512", "--set",
                        "train.precision=bf16"), ["achievable_tflops.bf16"])

        # Calibration from a real 2-rank tp run, and a plan from the profile it writes.
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMP_NUM_THREADS="1")
        run_dir = os.path.join(work, "run")
        train = subprocess.run(["mpiexec", "--oversubscribe", "-n", "2", TESSERA, "train", bench,
                                "--set", "run.dir=" + run_dir, "--set", "train.steps=3",
                                "--set", "parallel.tp=2", "--set", "log.progress=plain",
                                "--set", "model.n_layers=2"],
                               capture_output=True, text=True, timeout=300, env=env)
        check("the run to calibrate from", train.returncode == 0, train)
        fitted = os.path.join(work, "fitted.toml")
        done = tessera("plan", "--calibrate", run_dir, "--hardware", "cpu-2core-avx512", "-o", fitted)
        check("calibration writes a profile", done.returncode == 0 and os.path.exists(fitted)
              and "achievable" in done.stdout, done)
        done = tessera("plan", bench, "--hardware", fitted, "--format", "json", "--as-configured",
                       "--set", "parallel.tp=2", "--set", "model.n_layers=2")
        check("the calibrated profile plans", done.returncode == 0
              and len(json.loads(done.stdout)["layouts"]) == 1, done)
        refused("calibration needs -o", tessera("plan", "--calibrate", run_dir, "--hardware",
                                                "cpu-2core-avx512"), ["-o FILE.toml"])
        refused("calibration needs a run directory",
                tessera("plan", "--calibrate", work, "--hardware", "cpu-2core-avx512", "-o",
                        fitted), ["manifest.json"])
        check_kernel_calibration(bench, run_dir, fitted, work, env)
        check_sweep(gpt2, work)
    return 1 if failures else 0


def fitted_rate(profile_file):
    """achievable_tflops.fp32 of a profile TOML as tessera writes it."""
    with open(profile_file, "rb") as profile:
        return tomllib.load(profile)["device"]["achievable_tflops"]["fp32"]


def check_kernel_calibration(config, run_dir, run_fitted, work, env):
    """--calibrate takes tessera calibrate's JSON: its GEMMs' total FLOPs over total time; a
    run given beside it overrides the compute rate (whole steps say more than kernels)."""
    kernels = os.path.join(work, "kernels.json")
    done = subprocess.run([TESSERA, "calibrate", "--d-models", "64", "--tokens", "64", "--vocab",
                           "96", "--attention", "32x2x8", "--copy-mib", "4", "--min-seconds",
                           "0.01", "-o", kernels], capture_output=True, text=True, timeout=300,
                          env=env)
    check("tessera calibrate for the kernel rates", done.returncode == 0, done)
    gemms = [g for g in json.load(open(kernels))["gemm"] if g["precision"] == "fp32"]
    flops = sum(6.0 * g["rows"] * g["in_features"] * g["out_features"] for g in gemms)
    seconds = sum(2.0 * g["rows"] * g["in_features"] * g["out_features"] *
                  (1 / g["forward_tflops"] + 2 / g["backward_tflops"]) / 1e12 for g in gemms)
    from_kernels = os.path.join(work, "from-kernels.toml")
    done = tessera("plan", "--calibrate", kernels, "--hardware", "cpu-2core-avx512", "-o",
                   from_kernels)
    check("calibration from tessera calibrate's JSON", done.returncode == 0
          and abs(fitted_rate(from_kernels) / (flops / seconds / 1e12) - 1) < 1e-3
          and "calibrated by tessera calibrate" in open(from_kernels).read(), done)
    both = os.path.join(work, "both.toml")
    done = tessera("plan", "--calibrate", kernels, run_dir, "--hardware", "cpu-2core-avx512",
                   "-o", both)
    check("a run overrides the kernels' compute rate", done.returncode == 0
          and fitted_rate(both) == fitted_rate(run_fitted)
          and "1 run(s) and 1 tessera calibrate file(s)" in done.stdout, done)
    refused("a JSON file that is not tessera calibrate's",
            tessera("plan", "--calibrate", os.path.join(run_dir, "manifest.json"), "--hardware",
                    "cpu-2core-avx512", "-o", both), ["is not the JSON of tessera calibrate"])


def check_sweep(config, work):
    study = os.path.join(work, "study")
    sweep = ["sweep", config, "--tasks-per-node", "1,2,4", "--time", "00:10:00", "--dry-run",
             "--layouts", "tp=1,pp=1;tp=2,pp=2", "--set", "train.micro_batch=1"]
    done = tessera(*sweep, "-o", study)
    points = json.load(open(os.path.join(study, "sweep.json")))["points"] \
        if done.returncode == 0 else []
    check("sweep --dry-run: sweep.json and a script a size",
          [p["label"] for p in points] == ["1n1t-tp1-pp1", "1n2t-tp1-pp1", "1n4t-tp1-pp1",
                                           "1n4t-tp2-pp2"]
          and all(os.path.exists(os.path.join(study, "1n%dt" % t, "slurm", "sweep-1n%dt.sbatch" % t))
                  for t in (1, 2, 4))
          and "#SBATCH --exclusive" in open(os.path.join(study, "1n4t", "slurm",
                                                         "sweep-1n4t.sbatch")).read(), done)
    refused("a sweep into a directory that holds one", tessera(*sweep, "-o", study),
            ["holds another sweep"])
    description = json.load(open(os.path.join(study, "sweep.json")))
    for nodes in (1.5, 2 ** 40, "1"):
        description["points"][0]["nodes"] = nodes
        damaged = os.path.join(work, "damaged-sweep")
        os.makedirs(damaged, exist_ok=True)
        json.dump(description, open(os.path.join(damaged, "sweep.json"), "w"))
        refused("tessera report of a sweep.json whose point has %r nodes" % nodes,
                tessera("report", damaged), ["is damaged", '"nodes"', "run tessera sweep again"])
    fresh = os.path.join(work, "fresh")
    refused("a sweep layout that runs at no size",
            tessera("sweep", config, "--tasks-per-node", "1,2", "--time", "00:10:00",
                    "--dry-run", "--layouts", "tp=1,pp=1;tp=5", "-o", fresh),
            ["--layouts tp=5 runs at no size"])
    refused("a sweep over 0 nodes",
            tessera("sweep", config, "--nodes", "0", "--tasks-per-node", "1", "--time",
                    "00:10:00", "--dry-run", "-o", fresh), ["--nodes 0"])
    check("nothing written for a refused sweep", not os.path.exists(fresh))
    check_planned_sweep(config, work)


def check_planned_sweep(config, work):
    """--layouts auto with --hardware: at each size the layout tessera plan ranks fastest among
    those that fit with the configuration's micro-batch and recomputation."""
    study = os.path.join(work, "planned")
    fixed = ["--set", "train.micro_batch=1", "--set", "train.recompute=none"]
    done = tessera("sweep", config, "--tasks-per-node", "1,2", "--time", "00:10:00",
                   "--dry-run", "--layouts", "auto", "--hardware", "cpu-2core-avx512", *fixed,
                   "-o", study)
    points = json.load(open(os.path.join(study, "sweep.json")))["points"] \
        if done.returncode == 0 else []
    check("sweep --layouts auto --hardware: one planned point a size", len(points) == 2, done)
    for point in points:
        plan = tessera("plan", config, "--hardware", "cpu-2core-avx512", "--ranks-per-node",
                       str(point["ranks"]), "--format", "json", *fixed)
        rows = [l for l in json.loads(plan.stdout)["layouts"] if l["fits"]
                and l["micro_batch"] == 1 and l["recompute"] == "none"] \
            if plan.returncode == 0 else []
        best = max(rows, key=lambda l: l["tokens_per_s"]) if rows else {}
        settings = point["settings"]
        check("auto at %d rank(s) is the plan's fastest (tp=%s pp=%s zero=%s)"
              % (point["ranks"], best.get("tp"), best.get("pp"), best.get("zero")),
              bool(best) and "parallel.tp=%d" % best["tp"] in settings
              and "parallel.pp=%d" % best["pp"] in settings
              and (best["zero"] == 0) == ("parallel.zero=1" not in settings), plan)


if __name__ == "__main__":
    sys.exit(main())
