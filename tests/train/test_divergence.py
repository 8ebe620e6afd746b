"""Non-finite steps: skipped, counted, and never the end of the good checkpoints.

  skip      NaN gradients injected at steps 3 and 4 (debug.nan_gradients_from): the run logs both
            as skipped_step records and finishes (exit 0) with the weights of a run that stopped
            after step 2: the skipped updates changed nothing.
  stop      NaN gradients from step 3 on, train.max_bad_steps = 3: exit status 3 after step 5, a
            "diverged" stop record, no checkpoint of a bad step (4), the step-2 checkpoint
            intact; resumed without the fault, the run finishes from it.
  diverge   The reported data loss: a good run saves steps 2, 4, 6 (checkpoint.keep = 3); resumed
            with train.lr = 1e30 and no clipping, its loss turns NaN. It must stop with exit
            status 3 and leave 2, 4, 6 in place, `latest` at 6, every value finite. The resume
            names the changed settings once and records them in the manifest.
  zero      'skip' under 2 ranks with ZeRO-1 (each rank owns half the optimizer state): every rank
            skips the same steps, and the weights equal the 2-step run's on every rank.

usage: test_divergence.py TESSERA CONFIG_DIR skip|stop|diverge|zero
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

DIVERGED_EXIT = 3
BASE = ["train.warmup_steps=2", "eval.every=0", 'log.progress="plain"']


def train(tessera, config, run_dir, settings, ranks=1):
    command = [tessera, "train", config]
    for setting in BASE + ["run.dir=" + run_dir] + settings:
        command += ["--set", setting]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + command
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    return done.returncode, done.stdout + done.stderr


def records(run_dir, kind):
    with open(os.path.join(run_dir, "metrics.jsonl")) as file:
        return [r for r in map(json.loads, file) if r.get("kind") == kind]


def checkpoints(run_dir):
    directory = os.path.join(run_dir, "checkpoints")
    steps = sorted(int(name[5:-3]) for name in os.listdir(directory) if name.startswith("step_"))
    with open(os.path.join(directory, "latest")) as file:
        latest = file.read().strip()
    return steps, latest


def all_finite(path):
    bad = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" and not np.all(
                np.isfinite(item[()])):
            bad.append(name)

    with h5py.File(path) as file:
        file.visititems(visit)
    return bad


class Checks:
    def __init__(self):
        self.failures = 0

    def expect(self, condition, what, detail=""):
        print(("ok   " if condition else "FAIL ") + what)
        if not condition:
            print(detail[-3000:])
            self.failures += 1


def final_checksums(run_dir):
    return [r["parameter_checksum"] for r in records(run_dir, "final")]


def case_skip(tessera, config, work, checks, ranks=1, extra=()):
    settings = list(extra)
    status, output = train(tessera, config, os.path.join(work, "two"),
                           settings + ["train.steps=2"], ranks)
    checks.expect(status == 0, "two clean steps", output)
    status, output = train(tessera, config, os.path.join(work, "skip"),
                           settings + ["train.steps=4", "debug.nan_gradients_from=3",
                                       "debug.nan_gradient_steps=2"], ranks)
    checks.expect(status == 0, "NaN gradients at steps 3 and 4: exit status 0", output)
    skipped = records(os.path.join(work, "skip"), "skipped_step")
    checks.expect([(r["step"], r["in_a_row"]) for r in skipped] == [(3, 1), (4, 2)],
                  "steps 3 and 4 recorded as skipped, 1 and 2 in a row", json.dumps(skipped))
    checks.expect(output.count("not finite; the weights are left as they were") == 2,
                  "one console line per skipped step", output)
    two, skip = final_checksums(os.path.join(work, "two")), final_checksums(
        os.path.join(work, "skip"))
    checks.expect(len(two) == 1 and two == skip,
                  "the weights after the skipped steps are those of step 2 (%s, %s)" % (two, skip))


def case_stop(tessera, config, work, checks):
    run = os.path.join(work, "stop")
    settings = ["train.steps=10", "checkpoint.every=2", "train.max_bad_steps=3"]
    status, output = train(tessera, config, run,
                           settings + ["debug.nan_gradients_from=3", "debug.nan_gradient_steps=100"])
    checks.expect(status == DIVERGED_EXIT, "NaN from step 3: exit status %d (got %d)" % (
        DIVERGED_EXIT, status), output)
    stops = records(run, "stop")
    checks.expect([(s["step"], s["reason"], s["exit_status"]) for s in stops] ==
                  [(5, "diverged", DIVERGED_EXIT)], "one diverged stop record at step 5",
                  json.dumps(stops))
    checks.expect("train.max_bad_steps" in output and "Lower train.lr" in output,
                  "the stop line names the setting and the fix", output)
    refused = [r["step"] for r in records(run, "checkpoint") if r.get("skipped")]
    checks.expect(refused == [4], "no checkpoint of the bad step 4", str(refused))
    steps, latest = checkpoints(run)
    checks.expect(steps == [2] and latest == "step_000000002.h5",
                  "the step-2 checkpoint stays, latest points at it", "%s %s" % (steps, latest))
    status, output = train(tessera, config, run, settings)
    checks.expect(status == 0 and "resumed from the checkpoint after step 2" in output,
                  "resumed without the fault, the run finishes from step 2", output)


def case_diverge(tessera, config, work, checks):
    run = os.path.join(work, "diverge")
    settings = ["checkpoint.every=2", "checkpoint.keep=3"]
    status, output = train(tessera, config, run, settings + ["train.steps=6"])
    checks.expect(status == 0, "a good run to step 6", output)
    status, output = train(tessera, config, run, settings + [
        "train.steps=12", "train.lr=1e30", "train.grad_clip=0"])
    checks.expect(status == DIVERGED_EXIT, "resumed with lr = 1e30: exit status %d (got %d)" % (
        DIVERGED_EXIT, status), output)
    checks.expect(output.count("setting(s) differ from the checkpoint's") == 1 and
                  "train.lr 0.01 -> 1e+30" in output and "train.grad_clip 1.0 -> 0.0" in output,
                  "the changed settings named once at the resume", output)
    with open(os.path.join(run, "manifest.json")) as file:
        changed = json.load(file)["restarts"][-1]["changed_settings"]
    checks.expect({"key": "train.lr", "checkpoint": "0.01", "now": "1e+30"} in changed,
                  "and recorded in the manifest's restart", json.dumps(changed))
    steps, latest = checkpoints(run)
    checks.expect(steps == [2, 4, 6] and latest == "step_000000006.h5",
                  "checkpoints 2, 4, 6 kept, latest at 6", "%s %s" % (steps, latest))
    for step in steps:
        path = os.path.join(run, "checkpoints", "step_%09d.h5" % step)
        bad = all_finite(path)
        checks.expect(not bad, "every value of checkpoint %d finite" % step, str(bad[:5]))


def main():
    tessera, config_dir, case = sys.argv[1], sys.argv[2], sys.argv[3]
    config = os.path.join(config_dir, "tiny.toml")
    checks = Checks()
    with tempfile.TemporaryDirectory() as work:
        if case == "skip":
            case_skip(tessera, config, work, checks)
        elif case == "stop":
            case_stop(tessera, config, work, checks)
        elif case == "diverge":
            case_diverge(tessera, config, work, checks)
        elif case == "zero":
            case_skip(tessera, config, work, checks, ranks=2,
                      extra=["parallel.zero=1", "train.micro_batch=8"])
        else:
            sys.exit("unknown case " + case)
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
