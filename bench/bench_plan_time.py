"""The step-time model against measured steps: calibrate on some runs, predict others.

Runs `tessera train` (bench-cpu, one thread a rank, layouts that do not oversubscribe the
cores) in two sets. The calibration set fixes the profile's rates (`tessera plan --calibrate`):
1 rank (compute), tp = 2 (the intra-node link), each run's optimizer (memory bandwidth). The
check set is every other layout: data, pipeline and sequence parallelism, ZeRO-1, recomputation,
gradient accumulation. For each check run the planner's step time (`tessera plan
--as-configured` with the calibrated profile) is printed beside the measured median step (steps
after the first) and their error; the issue's target is 20 %. Both sets run in this one
command, interleaved twice, so both see the same machine.

usage: bench_plan_time.py [TESSERA] [CONFIG_DIR] [OUT_FILE]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

STEPS = 8
COMMON = ["train.steps=%d" % STEPS, "train.warmup_steps=1", "eval.every=0", "log.every=1",
          "log.progress=plain"]
CALIBRATION = [
    ("1 rank", 1, []),
    ("tp=2", 2, ["parallel.tp=2"]),
]
CHECK = [
    ("1 rank, micro_batch 4 x 2", 1, ["train.micro_batch=4"]),
    ("1 rank, recompute selective", 1, ["train.recompute=selective"]),
    ("1 rank, recompute full", 1, ["train.recompute=full"]),
    ("dp=2", 2, ["train.micro_batch=4"]),
    ("dp=2, ZeRO-1", 2, ["train.micro_batch=4", "parallel.zero=1"]),
    ("tp=2, sequence parallel", 2, ["parallel.tp=2", "parallel.sequence_parallel=true"]),
    ("pp=2, 1F1B, micro_batch 2", 2, ["parallel.pp=2", "train.micro_batch=2"]),
    ("pp=2, GPipe, micro_batch 1", 2, ["parallel.pp=2", "train.micro_batch=1",
                                       "parallel.schedule=gpipe"]),
]


def train(tessera, config, ranks, settings, run_dir, env):
    command = ["mpiexec", "--oversubscribe", "-n", str(ranks), tessera, "train", config,
               "--set", "run.dir=" + run_dir]
    for setting in COMMON + settings:
        command += ["--set", setting]
    subprocess.run(command, check=True, capture_output=True, env=env)


def measured_step_s(run_dir, config_tokens):
    with open(os.path.join(run_dir, "metrics.jsonl")) as metrics:
        steps = [json.loads(l) for l in metrics if '"kind":"train"' in l]
    return statistics.median(config_tokens / s["tokens_per_s"] for s in steps[1:])


def main():
    tessera = sys.argv[1] if len(sys.argv) > 1 else "build/release/tessera"
    configs = sys.argv[2] if len(sys.argv) > 2 else "configs"
    out_file = sys.argv[3] if len(sys.argv) > 3 else None
    config = os.path.join(configs, "bench-cpu.toml")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    tokens = 8 * 256  # bench-cpu: global_batch x seq_len
    lines = []
    with tempfile.TemporaryDirectory() as work:
        measured = {}
        for repetition in range(2):
            for label, ranks, settings in CALIBRATION + CHECK:
                run_dir = os.path.join(work, "%s-%d" % (label.replace(" ", "_"), repetition))
                train(tessera, config, ranks, settings, run_dir, env)
                measured.setdefault(label, []).append(run_dir)
        profile = os.path.join(work, "calibrated.toml")
        calibration_dirs = [d for label, _, _ in CALIBRATION for d in measured[label]]
        fit = subprocess.run([tessera, "plan", "--calibrate", *calibration_dirs, "--hardware",
                              "cpu-2core-avx512", "-o", profile],
                             check=True, capture_output=True, text=True)
        lines.append(fit.stdout.strip().replace(profile, "the calibrated profile"))
        lines.append("%-32s %12s %12s %8s" % ("check run", "measured s", "planned s", "error"))
        errors = []
        for label, ranks, settings in CHECK:
            steps = [measured_step_s(d, tokens) for d in measured[label]]
            plan = subprocess.run([tessera, "plan", config, "--hardware", profile, "--format",
                                   "json", "--as-configured", "--ranks-per-node", str(ranks)]
                                  + [a for s in COMMON + settings for a in ("--set", s)],
                                  check=True, capture_output=True, text=True)
            planned = json.loads(plan.stdout)["layouts"][0]["step_s"]["total"]
            step = statistics.median(steps)
            error = (planned - step) / step
            errors.append(abs(error))
            lines.append("%-32s %12.3f %12.3f %+7.1f%%   (runs: %s)" % (
                label, step, planned, 100 * error, ", ".join("%.3f" % s for s in steps)))
        lines.append("largest error %.1f %%, median %.1f %% (target: within 20 %%)" % (
            100 * max(errors), 100 * statistics.median(errors)))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out_file:
        with open(out_file, "w") as out:
            out.write(text)


if __name__ == "__main__":
    main()
