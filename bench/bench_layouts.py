"""Tokens/s and the time split of a training step at several (dp, tp, pp) layouts.

Runs `tessera train` under mpiexec for each layout on the same model and batch, and prints,
per layout: tokens/s; per step seconds of compute, tensor-parallel communication, pipeline
wait, data-parallel communication left after overlap, and optimizer; the measured and the
theoretical pipeline bubble. Data-parallel overlap is shown by running dp = 2 twice: with
buckets (communication starts during backward) and with one bucket that is ready only at the
end (nothing hidden); the difference is the communication backward hid.

On this machine the ranks share its cores, so absolute figures say more about the machine than
about the layouts; the split and the overlap are the point.

usage: bench_layouts.py [TESSERA] [CONFIG_DIR]
"""
import json
import os
import subprocess
import sys
import tempfile

MODEL = ["model.n_layers=8", "model.d_model=256", "model.n_heads=8", "model.seq_len=128",
         "train.global_batch=32", "train.micro_batch=4", "train.steps=8",
         "train.warmup_steps=1", "eval.every=0", "log.every=1", "log.progress=plain"]
# (label, ranks, settings)
RUNS = [
    ("1 rank (2 threads)", 1, []),
    ("dp=2", 2, ["parallel.dp=2"]),
    ("dp=2, one bucket (no overlap)", 2, ["parallel.dp=2", "parallel.bucket_mb=100000"]),
    ("dp=2, ZeRO-1", 2, ["parallel.dp=2", "parallel.zero=1"]),
    ("tp=2", 2, ["parallel.tp=2"]),
    ("pp=2, 1F1B", 2, ["parallel.pp=2"]),
    ("pp=2, GPipe", 2, ["parallel.pp=2", "parallel.schedule=gpipe"]),
    ("pp=2, interleaved v=2", 2, ["parallel.pp=2", "parallel.schedule=interleaved",
                                  "parallel.chunks_per_stage=2"]),
    ("dp=2 tp=2 (4 ranks on 2 cores)", 4, ["parallel.dp=2", "parallel.tp=2"]),
]
TIMES = ["time_compute_s", "time_tp_comm_s", "time_pipeline_wait_s", "time_dp_wait_s",
         "time_optimizer_s"]


def run(tessera, config, ranks, settings, run_dir):
    command = [tessera, "train", config]
    for setting in MODEL + settings + ["run.dir=" + run_dir]:
        command += ["--set", setting]
    threads = "2" if ranks == 1 else "1"
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe", "--bind-to", "none"] + command
    env = dict(os.environ, OMP_NUM_THREADS=threads, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run(command, env=env, check=True, capture_output=True)
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    steps = [r for r in records if r.get("kind") == "train"][1:]  # the first step allocates
    mean = {key: sum(r.get(key, 0.0) for r in steps) / len(steps)
            for key in ["tokens_per_s"] + TIMES}
    mean["bubble_measured"] = steps[-1].get("bubble_measured")
    mean["bubble_theoretical"] = steps[-1].get("bubble_theoretical")
    return mean


def main():
    tessera = sys.argv[1] if len(sys.argv) > 1 else "build/release/tessera"
    config = os.path.join(sys.argv[2] if len(sys.argv) > 2 else "configs", "tiny.toml")
    print("model: tiny.toml with " + " ".join(MODEL[:6]))
    header = "%-32s %9s %9s %9s %9s %9s %9s %15s" % (
        "layout", "tokens/s", "compute", "tp comm", "pp wait", "dp wait", "optim",
        "bubble meas/th")
    print(header + "\n" + "-" * len(header))
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for index, (label, ranks, settings) in enumerate(RUNS):
            r = run(tessera, config, ranks, settings, os.path.join(work, str(index)))
            results[label] = r
            bubble = ("%.2f / %.2f" % (r["bubble_measured"], r["bubble_theoretical"])
                      if r["bubble_theoretical"] is not None else "-")
            print("%-32s %9.0f %8.3fs %8.3fs %8.3fs %8.3fs %8.3fs %15s" % (
                label, r["tokens_per_s"], r["time_compute_s"], r["time_tp_comm_s"],
                r["time_pipeline_wait_s"], r["time_dp_wait_s"], r["time_optimizer_s"], bubble))
    blocking = results["dp=2, one bucket (no overlap)"]["time_dp_wait_s"]
    overlapped = results["dp=2"]["time_dp_wait_s"]
    print("\ndata-parallel communication per step: %.4f s when nothing overlaps, %.4f s left "
          "with buckets: %.0f%% hidden behind backward" %
          (blocking, overlapped, 100.0 * max(0.0, blocking - overlapped) / blocking
           if blocking > 0 else 0.0))


if __name__ == "__main__":
    main()
