"""Checkpoints, resume and preemption on one backend (written for the CUDA backend; runs on the
CPU and Kokkos backends too), and checkpoints carried between backends.

`resume`: for each model and precision, 8 steps straight against 4 steps (train.stop_after = 4)
and a restart that resumes: per-step losses and the final parameters' checksum bitwise equal,
with synchronous saves and with asynchronous ones (checkpoint.async: the state is copied to the
host at the step boundary, written by a thread while training goes on; the fraction of the write
that training was blocked for is reported).
`cross`: a checkpoint written by BACKEND resumes on the CPU backend, and one written by the CPU
backend resumes on BACKEND (fp32, tiny and tiny-openlm): every step after the resume within
1e-4 relative of the uninterrupted CPU run, the bound of test_backend_training.py (the two
backends differ by a few ulps per op, and training amplifies it slowly).
`preempt`: SIGUSR1 mid-step (a small model, once step 5 of 2000 is logged) and mid-checkpoint (a checkpoint's
temporary file still open when the signal is sent, synchronous and asynchronous saves): exit
status 75, a stop record and line, `latest` naming the stop's step and holding finite tensors
that tessera's own verification accepts on the resume (FNV-1a of every tensor; tiny ones also
checked here with h5py), and the resumed run ends with the uninterrupted run's parameters.

Every run's memory record (peak bytes in the backend's buffers, bytes in use on the device) goes
into the report, with checkpoint sizes and times.

Models: `tiny-openlm` (configs/tiny-openlm.toml) and `gpt2-124m` (configs/gpt2-124m.toml at
micro-batch 8 x 1024 on the synthetic source, 1.5 GB checkpoints); `--small` replaces gpt2-124m
with configs/tiny.toml, so the checks run in seconds on a CPU.

usage: test_backend_system.py TESSERA CONFIG_DIR BACKEND CASE[,CASE...] [--small]
                              [--precisions fp32,bf16] [--report FILE.json]
Exits 77 (ctest: skipped) when BACKEND is cuda and no GPU is usable, unless TESSERA_REQUIRE_GPU
is set.
"""
import argparse
import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_backend_training import gpu_usable  # noqa: E402
from test_stop import ENV, STOPPED_EARLY, final_checksum, records, verify_latest  # noqa: E402

SKIP = 77
STEPS, STOP_AFTER = 8, 4
CROSS_RELATIVE = 1e-4
COMMON = ["train.warmup_steps=2", "eval.every=0", "log.every=1", "log.progress=plain",
          "checkpoint.keep=2"]
MODELS = {
    "tiny-openlm": ("tiny-openlm.toml", []),
    "tiny": ("tiny.toml", []),
    "gpt2-124m": ("gpt2-124m.toml", ['data.source="synthetic"', 'data.tokenizer="byte"',
                                     "train.global_batch=8", "train.micro_batch=8"]),
}
# A model small enough that a run of SIGNAL_STEPS lasts seconds and outlasts the signal, sent
# once step 5 is logged, on any backend.
SIGNAL_STEPS = 2000
SIGNAL_MODEL = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.seq_len=32",
                "train.global_batch=4", "train.micro_batch=2"]


class Runner:
    """Runs `tessera train` and keeps what each run measured for the report."""

    def __init__(self, tessera, config_dir, work):
        self.tessera, self.config_dir, self.work = tessera, config_dir, work
        self.report = {"runs": [], "checks": []}
        self.failures = 0
        self.straight_runs = {}

    def straight(self, model, backend, precision, extra):
        """An uninterrupted run, made once for each set of settings."""
        key = (model, backend, precision, tuple(extra))
        if key not in self.straight_runs:
            name = "straight-%d-%s-%s-%s" % (len(self.straight_runs), model, backend, precision)
            run_dir = self.train(model, backend, precision, name, extra)[0]
            if run_dir is not None:  # only metrics.jsonl is compared: free the disk
                shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)
            self.straight_runs[key] = run_dir
        return self.straight_runs[key]

    def command(self, model, backend, precision, run_dir, extra=()):
        config, settings = MODELS[model]
        line = [self.tessera, "train", os.path.join(self.config_dir, config)]
        for setting in (COMMON + settings + ['train.backend="%s"' % backend,
                                             'train.precision="%s"' % precision,
                                             "run.dir=" + run_dir] + list(extra)):
            line += ["--set", setting]
        return line

    def train(self, model, backend, precision, name, extra=(), part=""):
        """Runs to the end; returns (run_dir, output). A refused bf16 on a CPU returns None.
        `part` tells the report which run in `name`'s directory this is."""
        run_dir = os.path.join(self.work, name)
        started = time.time()
        result = subprocess.run(self.command(model, backend, precision, run_dir, extra), env=ENV,
                                capture_output=True, text=True, timeout=900)
        output = result.stdout + result.stderr
        if result.returncode == 2 and "bf16" in output and backend == "cpu":
            return None, output
        self.note_run(name + part, model, backend, precision, run_dir, time.time() - started)
        if result.returncode != 0:
            self.fail("%s: exit status %d\n%s" % (name, result.returncode, output[-3000:]))
        return run_dir, output

    def note_run(self, name, model, backend, precision, run_dir, seconds):
        run = {"name": name, "model": model, "backend": backend, "precision": precision,
               "seconds": round(seconds, 2)}
        memory = records(run_dir, "memory")
        if memory:
            run["peak_buffer_bytes"] = memory[-1]["peak_buffer_bytes"]
            run["system_bytes"] = memory[-1]["system_bytes"]
        saves = records(run_dir, "checkpoint")
        if saves:
            run["checkpoints"] = [{k: save[k] for k in ("step", "bytes", "seconds", "blocked_s")}
                                  for save in saves]
        self.report["runs"].append(run)

    def check(self, ok, line):
        print("%-4s %s" % ("ok" if ok else "FAIL", line), flush=True)
        self.report["checks"].append({"ok": bool(ok), "check": line})
        if not ok:
            self.failures += 1

    def fail(self, line):
        self.check(False, line)


def losses(run_dir):
    """{step: loss}; after a resume the last record of a step wins."""
    return {r["step"]: r["loss"] for r in records(run_dir, "train")}


def blocked_fraction(run_dir):
    saves = records(run_dir, "checkpoint")
    written = sum(s["seconds"] for s in saves)
    return sum(s["blocked_s"] for s in saves) / written if written > 0 else float("nan")


def resume(runner, backend, models, precisions):
    for model in models:
        for precision in precisions:
            label = "%s %s %s" % (model, backend, precision)
            straight = runner.straight(model, backend, precision, ["train.steps=%d" % STEPS])
            if straight is None:
                print("skip %s: this CPU has no bf16 kernels" % label)
                continue
            for saving in ("sync", "async"):
                extra = ["train.steps=%d" % STEPS, "checkpoint.every=2"]
                if saving == "async":
                    extra.append("checkpoint.async=true")
                name = "resumed-%s-%s-%s-%s" % (model, backend, precision, saving)
                run_dir, _ = runner.train(model, backend, precision, name,
                                          extra + ["train.stop_after=%d" % STOP_AFTER])
                stopped_saves = records(run_dir, "checkpoint")
                _, output = runner.train(model, backend, precision, name, extra, part=" (resumed)")
                resumed = "resumed from the checkpoint after step %d" % STOP_AFTER in output
                a, b = losses(straight), losses(run_dir)
                same = (a == b and sorted(b) == list(range(1, STEPS + 1)) and
                        final_checksum(straight) == final_checksum(run_dir) is not None)
                detail = ""
                if saving == "async":
                    detail = ", training blocked for %.0f %% of the writes' time" % (
                        100 * blocked_fraction(run_dir))
                size = max((s["bytes"] for s in stopped_saves), default=0)
                runner.check(resumed and same,
                             "%s, %s saves: %d steps straight vs %d + resume: losses %s, final "
                             "parameters %s (checkpoint %.1f MB%s)" % (
                                 label, saving, STEPS, STOP_AFTER,
                                 "identical" if a == b else "DIFFER",
                                 "identical" if same else "DIFFER", size / 1e6, detail))
                shutil.rmtree(run_dir, ignore_errors=True)  # gpt2-124m's are 1.5 GB each


def cross(runner, backend):
    for model in ("tiny-openlm", "tiny"):
        steps = ["train.steps=%d" % STEPS]
        reference = runner.straight(model, "cpu", "fp32", steps)
        expected = losses(reference)
        for writer, reader in ((backend, "cpu"), ("cpu", backend)):
            name = "cross-%s-%s-to-%s" % (model, writer, reader)
            run_dir, _ = runner.train(model, writer, "fp32", name,
                                      steps + ["train.stop_after=%d" % STOP_AFTER])
            _, output = runner.train(model, reader, "fp32", name, steps, part=" (resumed)")
            got = losses(run_dir)
            worst = max(abs(got[s] - expected[s]) / abs(expected[s])
                        for s in range(1, STEPS + 1)) if sorted(got) == sorted(expected) else 1.0
            resumed = "resumed from the checkpoint after step %d" % STOP_AFTER in output
            runner.check(resumed and worst <= CROSS_RELATIVE,
                         "%s fp32: saved on %s after step %d, resumed on %s: worst relative loss "
                         "difference to the uninterrupted cpu run %.2e (bound %g)" % (
                             model, writer, STOP_AFTER, reader, worst, CROSS_RELATIVE))


def temp_checkpoint(run_dir):
    return glob.glob(os.path.join(run_dir, "checkpoints", "step_*.h5.tmp-*"))


def finite_latest(run_dir):
    """None when every tensor of the checkpoint `latest` names is finite, else the problem."""
    directory = os.path.join(run_dir, "checkpoints")
    latest = open(os.path.join(directory, "latest")).read().strip()
    bad = []
    with h5py.File(os.path.join(directory, latest), "r") as checkpoint:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and not all(
                    math.isfinite(float(v)) for v in (item[...].min(), item[...].max())):
                bad.append(name)
        checkpoint.visititems(visit)
    return "non-finite tensors: %s" % bad if bad else None


def signalled(runner, model, backend, precision, name, extra, straight, when, label=""):
    """Starts a run, sends SIGUSR1 once `when(run_dir)` names the moment, checks the stop, the
    checkpoint and the resume."""
    run_dir = os.path.join(runner.work, name)
    started = time.time()
    process = subprocess.Popen(runner.command(model, backend, precision, run_dir, extra), env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    moment = None
    while moment is None and process.poll() is None and time.time() < deadline:
        moment = when(run_dir)
        if moment is None:
            time.sleep(0.002)
    if moment is not None:
        process.send_signal(signal.SIGUSR1)  # the process this test started, nothing else
        if temp_checkpoint(run_dir):
            moment += " (still being written after the signal)"
    output = process.communicate(timeout=600)[0]
    runner.note_run(name, model, backend, precision, run_dir, time.time() - started)
    stops = records(run_dir, "stop")
    problems = []
    if moment is None:
        problems.append("the run ended before the moment to signal it")
    if process.returncode != STOPPED_EARLY:
        problems.append("exit status %d, expected 75" % process.returncode)
    if len(stops) != 1 or stops[0].get("signal") != "SIGUSR1":
        problems.append("stop records %s" % stops)
    else:
        problems += check_stop(runner, model, backend, precision, run_dir, extra, stops[0]["step"],
                               output, straight)
    runner.check(not problems, "%s %s %s%s: SIGUSR1 %s -> %s" % (
        model, backend, precision, label, moment,
        "; ".join(problems) if problems else
        "exit 75 after step %d, verified checkpoint, resumed to the uninterrupted run's final "
        "parameters" % stops[0]["step"]))
    if problems:
        print(output[-3000:])
    shutil.rmtree(run_dir, ignore_errors=True)


def check_stop(runner, model, backend, precision, run_dir, extra, step, output, straight):
    """The problems of a stop after `step`: its line, its checkpoint, the resume's end."""
    problems = []
    if "step %d | stopping: received SIGUSR1; checkpoint saved; exit status 75" % step not in output:
        problems.append("no stop line for step %d" % step)
    checkpoint = os.path.join(run_dir, "checkpoints", "step_%09d.h5" % step)
    # Checksums in Python take minutes for 1.5 GB: large files are checked for finite values
    # here and by tessera's own verification of every tensor's checksum when it resumes.
    small = os.path.exists(checkpoint) and os.path.getsize(checkpoint) < 100e6
    problem = verify_latest(run_dir, step) if small else finite_latest(run_dir)
    if problem:
        problems.append(problem)
    result = subprocess.run(runner.command(model, backend, precision, run_dir, extra), env=ENV,
                            capture_output=True, text=True, timeout=900)
    resumed = result.stdout + result.stderr
    if result.returncode != 0 or "resumed from the checkpoint after step %d" % step not in resumed:
        problems.append("the resume exited %d and did not resume from step %d" % (
            result.returncode, step))
    if "falling back" in resumed:
        problems.append("the resume rejected the checkpoint: " + resumed[-500:])
    if final_checksum(run_dir) != final_checksum(straight):
        problems.append("final parameters %s, uninterrupted %s" % (
            final_checksum(run_dir), final_checksum(straight)))
    return problems


def step_reached(step):
    def when(run_dir):
        if any(r["step"] >= step for r in records(run_dir, "train")):
            return "after step %d was logged (mid-step)" % step
        return None
    return when


def checkpoint_open(run_dir):
    found = temp_checkpoint(run_dir)
    return "while %s was being written" % os.path.basename(found[0]) if found else None


def preempt(runner, backend, models, precisions):
    for precision in precisions:
        steps = ["train.steps=%d" % SIGNAL_STEPS] + SIGNAL_MODEL
        straight = runner.straight("tiny", backend, precision, steps)
        if straight is None:
            print("skip signals in %s: this CPU has no bf16 kernels" % precision)
            continue
        signalled(runner, "tiny", backend, precision, "signal-step-%s-%s" % (backend, precision),
                  steps, straight, step_reached(5))
    large = models[-1]
    precision = precisions[0]
    steps = ["train.steps=%d" % STEPS]
    straight = runner.straight(large, backend, precision, steps)
    for saving in ("sync", "async"):
        extra = steps + ["checkpoint.every=2"] + (["checkpoint.async=true"] if saving == "async"
                                                  else [])
        signalled(runner, large, backend, precision,
                  "signal-checkpoint-%s-%s-%s-%s" % (large, backend, precision, saving), extra,
                  straight, checkpoint_open, ", %s saves" % saving)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tessera")
    parser.add_argument("config_dir")
    parser.add_argument("backend", choices=["cpu", "cuda", "kokkos"])
    parser.add_argument("cases", help="comma-separated: resume, cross, preempt")
    parser.add_argument("--small", action="store_true", help="tiny.toml instead of gpt2-124m")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--report", help="write the runs and checks here as JSON")
    args = parser.parse_args()
    if args.backend == "cuda" and not gpu_usable():
        if os.environ.get("TESSERA_REQUIRE_GPU"):
            sys.exit("FAIL: no usable GPU, but TESSERA_REQUIRE_GPU is set")
        print("skipped: no GPU")
        sys.exit(SKIP)
    if "cross" in args.cases.split(",") and args.backend == "cpu":
        sys.exit("the cross case carries checkpoints between cpu and another backend; pick cuda or kokkos")
    models = ["tiny-openlm", "tiny" if args.small else "gpt2-124m"]
    precisions = args.precisions.split(",")
    cases = {"resume": lambda r: resume(r, args.backend, models, precisions),
             "cross": lambda r: cross(r, args.backend),
             "preempt": lambda r: preempt(r, args.backend, models, precisions)}
    with tempfile.TemporaryDirectory() as work:
        runner = Runner(args.tessera, args.config_dir, work)
        for case in args.cases.split(","):
            if case not in cases:
                sys.exit("unknown case %s; pick from %s" % (case, ", ".join(cases)))
            cases[case](runner)
    if args.report:
        with open(args.report, "w") as out:
            json.dump(runner.report, out, indent=1)
    passed = sum(1 for c in runner.report["checks"] if c["ok"])
    print("%d passed, %d failed" % (passed, runner.failures))
    sys.exit(1 if runner.failures else 0)


if __name__ == "__main__":
    main()
