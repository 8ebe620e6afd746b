"""The memory plan predicts what the trainer's buffers peak at.

Trains a few steps at each layout below under mpiexec (dp, tp, pp, every pipeline schedule,
each recompute mode, ZeRO-1, sequence parallelism, deterministic mode) on two models, bench-cpu
(GPT-2, 19M parameters) and a larger OpenLM, and compares the metrics.jsonl "memory" record's
planned_peak_bytes with peak_buffer_bytes, the backend allocator's high-water mark over every
rank. The plan counts exactly the buffers the trainer allocates, so it must match to within
TOLERANCE (the issue asks for 10 %; a difference at all means a buffer the plan does not know).
Prints one row per layout; exits non-zero on any mismatch or failed run.

usage: test_memory_plan.py TESSERA CONFIG_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

TOLERANCE = 0.01
COMMON = ["train.steps=2", "train.warmup_steps=1", "log.progress=plain", "eval.every=1",
          "eval.batches=1"]
# A larger OpenLM (SwiGLU, rotary, untied head, 8 heads of 64): 4 layers of width 512.
OPENLM = ["model.family=openlm", "model.n_layers=4", "model.d_model=512", "model.n_heads=8",
          "model.seq_len=256", "model.vocab_size=8192", "train.global_batch=8"]
# (ranks, model settings, layout settings)
LAYOUTS = [
    (1, [], []),
    (1, [], ["train.recompute=selective"]),
    (1, [], ["train.recompute=full"]),
    (2, [], ["train.micro_batch=4"]),
    (2, [], ["train.micro_batch=2", "parallel.zero=1"]),
    (2, [], ["parallel.tp=2"]),
    (2, [], ["parallel.tp=2", "parallel.sequence_parallel=true", "train.recompute=selective"]),
    (2, [], ["parallel.pp=2", "train.micro_batch=2"]),
    (2, [], ["parallel.pp=2", "train.micro_batch=1", "parallel.schedule=gpipe"]),
    (2, [], ["train.micro_batch=2", "parallel.deterministic=true"]),
    (4, [], ["parallel.tp=2", "parallel.pp=2", "train.micro_batch=2", "parallel.zero=1"]),
    (1, OPENLM, []),
    (2, OPENLM, ["parallel.tp=2", "train.recompute=full"]),
    (2, OPENLM, ["parallel.pp=2", "train.micro_batch=1", "parallel.schedule=interleaved",
                 "parallel.chunks_per_stage=2"]),
    (4, OPENLM, ["parallel.tp=2", "parallel.sequence_parallel=true", "parallel.zero=1",
                 "train.micro_batch=2"]),
    (4, OPENLM, ["parallel.pp=4", "train.micro_batch=1", "train.recompute=selective"]),
]


def memory_record(tessera, config, ranks, settings, run_dir):
    command = ["mpiexec", "--oversubscribe", "-n", str(ranks), tessera, "train", config,
               "--set", "run.dir=" + run_dir]
    for setting in COMMON + settings:
        command += ["--set", setting]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError("exit status %d: %s" % (done.returncode, done.stderr[-2000:]))
    with open(os.path.join(run_dir, "metrics.jsonl")) as metrics:
        records = [json.loads(line) for line in metrics]
    return [r for r in records if r.get("kind") == "memory"][-1]


def main():
    tessera, configs = sys.argv[1], sys.argv[2]
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                      OMP_NUM_THREADS="1")
    config = os.path.join(configs, "bench-cpu.toml")
    failures = 0
    print("%-5s %-7s %12s %12s %8s  %s" % ("ranks", "model", "measured MiB", "planned MiB",
                                          "error", "layout"))
    for ranks, model, layout in LAYOUTS:
        name = "openlm" if model else "gpt2"
        with tempfile.TemporaryDirectory() as run_dir:
            try:
                record = memory_record(tessera, config, ranks, model + layout, run_dir)
            except (RuntimeError, subprocess.TimeoutExpired, OSError, IndexError) as error:
                print("FAIL %d %s %s: %s" % (ranks, name, " ".join(layout), error))
                failures += 1
                continue
        measured, planned = record["peak_buffer_bytes"], record["planned_peak_bytes"]
        error = (planned - measured) / measured
        verdict = "ok  " if abs(error) <= TOLERANCE else "FAIL"
        failures += verdict == "FAIL"
        print("%-5d %-7s %12.2f %12.2f %+7.3f%%  %s %s" % (
            ranks, name, measured / 2**20, planned / 2**20, 100 * error, verdict,
            " ".join(layout) or "(1 process)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
