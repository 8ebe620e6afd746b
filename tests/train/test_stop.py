"""Early stops: a stop signal or the job's time limit ends a run with a checkpoint and exit
status 75, and running the same command again resumes and ends bit for bit where an
uninterrupted run does.

`signal`: SIGUSR1 to the single process, and to rank 1 alone of a 2-rank mpiexec, and SIGTERM
to a single process saving asynchronously: exit 75, the
stop line and metrics record, a `latest` checkpoint of that step that h5py verifies (every
tensor's checksum), then the same command resumes and finishes with the uninterrupted run's
final parameter checksum.
`time_limit`: run.deadline a few seconds away: exit 75 before the deadline with the numbers in
the log, then a resume without the deadline ends bitwise equal to the uninterrupted run (both
end 20 steps after the stop through train.stop_after, which changes nothing else).
`squeue`: inside a Slurm job of Debian 12's Slurm 22.05 (SLURM_JOB_ID set, no
SLURM_JOB_END_TIME) the end time comes from squeue, asked once (rank 0) for 2 ranks.

usage: test_stop.py TESSERA CONFIG_DIR CASE
"""
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

import h5py

from process_tree import rank_pid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from checkpoint_hash import checksum_problem  # noqa: E402

# A small model: steps of a few milliseconds, so that a run is seconds long.
BASE = ["train.warmup_steps=2", "eval.every=0", "log.every=1", "log.progress=plain",
        "model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.seq_len=32",
        "train.global_batch=4", "train.micro_batch=2", "checkpoint.keep=2"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
for name in ("SLURM_JOB_ID", "SLURM_JOB_END_TIME"):  # never the job this test may run in
    ENV.pop(name, None)
STOPPED_EARLY = 75


def command(tessera, config, run_dir, ranks, extra):
    line = [tessera, "train", config]
    for setting in BASE + ["run.dir=" + run_dir] + list(extra):
        line += ["--set", setting]
    if ranks > 1:
        line = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + line
    return line


def train(tessera, config, run_dir, ranks=1, extra=(), env=None):
    result = subprocess.run(command(tessera, config, run_dir, ranks, extra), env=env or ENV,
                            capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def records(run_dir, kind):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if record.get("kind") == kind:
            out.append(record)
    return out


def final_checksum(run_dir):
    finals = records(run_dir, "final")
    return finals[-1]["parameter_checksum"] if finals else None


def verify_latest(run_dir, step):
    """The checkpoint `latest` names is step_<step>.h5 and every tensor matches its checksum."""
    directory = os.path.join(run_dir, "checkpoints")
    latest = open(os.path.join(directory, "latest")).read().strip()
    if latest != "step_%09d.h5" % step:
        return "latest names %s, expected step %d" % (latest, step)
    bad, count = [], 0
    with h5py.File(os.path.join(directory, latest), "r") as checkpoint:
        if json.loads(checkpoint.attrs["metadata"])["step"] != step:
            return "the metadata of %s names another step" % latest

        def visit(name, item):
            nonlocal count
            if isinstance(item, h5py.Dataset):
                count += 1
                if checksum_problem(checkpoint, item):
                    bad.append(name)
        checkpoint.visititems(visit)
        json.loads(checkpoint.attrs["manifest"])
    if count == 0 or bad:
        return "%d datasets, checksum mismatches: %s" % (count, bad)
    return None


def wait_for_step(run_dir, step, process, limit_s=120):
    deadline = time.time() + limit_s
    while time.time() < deadline and process.poll() is None:
        if any(r["step"] >= step for r in records(run_dir, "train")):
            return True
        time.sleep(0.01)
    return False


def interrupted_by_signal(tessera, config, work, ranks, steps, sent=signal.SIGUSR1, saving=()):
    """Signals one process mid-run; returns the number of failures."""
    name = "%drank%s" % (ranks, "_async" if saving else "")
    sent_name = signal.Signals(sent).name
    extra = ["train.steps=%d" % steps] + list(saving)
    straight = os.path.join(work, "straight_" + name)
    status, output = train(tessera, config, straight, ranks, extra)
    if status != 0:
        print("FAIL %s: the uninterrupted run exited %d\n%s" % (name, status, output[-2000:]))
        return 1
    run_dir = os.path.join(work, "signalled_" + name)
    process = subprocess.Popen(command(tessera, config, run_dir, ranks, extra), env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    target = process.pid
    reached = wait_for_step(run_dir, 5, process)
    if ranks > 1:
        target = rank_pid(process.pid, 1)  # one rank alone: the others learn it at the boundary
    if not reached or target is None:
        process.kill()
        print("FAIL %s: did not reach step 5 or found no rank 1 (%s)" % (name, target))
        return 1
    os.kill(target, sent)
    output = process.communicate(timeout=300)[0]
    failures = []
    stops = records(run_dir, "stop")
    if process.returncode != STOPPED_EARLY:
        failures.append("exit status %d, expected %d" % (process.returncode, STOPPED_EARLY))
    if len(stops) != 1 or stops[0].get("reason") != "signal" or stops[0].get("signal") != sent_name:
        failures.append("metrics.jsonl stop records: %s" % stops)
    else:
        step = stops[0]["step"]
        line = ("step %d | stopping: received %s; checkpoint saved; exit status 75 so the "
                "job is requeued" % (step, sent_name))
        if line not in output:
            failures.append("no line '%s'" % line)
        if step >= steps:
            failures.append("stopped at step %d of %d: not early" % (step, steps))
        problem = verify_latest(run_dir, step)
        if problem:
            failures.append(problem)
        status, resumed = train(tessera, config, run_dir, ranks, extra)
        if status != 0 or ("resumed from the checkpoint after step %d" % step) not in resumed:
            failures.append("the re-run exited %d and did not resume from step %d:\n%s"
                            % (status, step, resumed[-1500:]))
    expected, got = final_checksum(straight), final_checksum(run_dir)
    if not failures and (expected is None or got != expected):
        failures.append("final parameters %s, uninterrupted %s" % (got, expected))
    for failure in failures:
        print("FAIL %s: %s" % (name, failure))
    if failures:
        print(output[-2000:])
        return 1
    print("ok   %s: %s at step %d -> exit 75, verified checkpoint, resumed, final "
          "parameters bitwise equal (%s)" % (name, sent_name, stops[0]["step"], got))
    return 0


def signals(tessera, config, work):
    # SIGTERM with asynchronous saves every 50 steps: the stop waits for the save in flight.
    return (interrupted_by_signal(tessera, config, work, 1, 300) +
            interrupted_by_signal(tessera, config, work, 2, 300) +
            interrupted_by_signal(tessera, config, work, 1, 300, signal.SIGTERM,
                                  ["checkpoint.async=true", "checkpoint.every=50"]))


def time_limit(tessera, config, work):
    steps = ["train.steps=100000"]  # far more than fit before the deadline
    # The margin covers the save and the exit of a loaded machine; the stop comes ~4 s in.
    deadline = int(time.time()) + 8
    run_dir = os.path.join(work, "limited")
    settings = steps + ["run.deadline=%d" % deadline, "run.stop_margin_s=4"]
    status, output = train(tessera, config, run_dir, 1, settings)
    ended = time.time()
    failures = []
    stops = records(run_dir, "stop")
    if status != STOPPED_EARLY:
        failures.append("exit status %d, expected 75\n%s" % (status, output[-2000:]))
    if ended >= deadline:
        failures.append("ended %.1f s after the deadline" % (ended - deadline))
    if len(stops) != 1 or stops[0]["reason"] != "time_limit":
        failures.append("metrics.jsonl stop records: %s" % stops)
    if failures:
        for failure in failures:
            print("FAIL time_limit: %s" % failure)
        return 1
    step = stops[0]["step"]
    line = [l for l in output.splitlines() if l.startswith("step %d | stopping before the time "
                                                          "limit: " % step)]
    if not line or "run.stop_margin_s (4 s)" not in line[0] or "exit status 75" not in line[0]:
        print("FAIL time_limit: no stop line with the numbers:\n%s" % output[-2000:])
        return 1
    if "time limit: the job ends in" not in output or "(from run.deadline)" not in output or \
            records(run_dir, "run")[0].get("job_end_time") != deadline:
        print("FAIL time_limit: the start did not announce the time limit (console and the "
              "metrics.jsonl run record)")
        return 1
    problem = verify_latest(run_dir, step)
    if problem:
        print("FAIL time_limit: %s" % problem)
        return 1
    # The same run without the (passed) deadline resumes and ends where an uninterrupted one
    # does; train.stop_after ends both 20 steps later without changing the run.
    total = steps + ["train.stop_after=%d" % (step + 20)]
    status, output = train(tessera, config, run_dir, 1, total)
    straight = os.path.join(work, "straight")
    status_straight, _ = train(tessera, config, straight, 1, total)
    if status != 0 or status_straight != 0 or \
            "resumed from the checkpoint after step %d" % step not in output or \
            final_checksum(run_dir) != final_checksum(straight):
        print("FAIL time_limit: resume exit %d, straight %d, checksums %s vs %s\n%s" % (
            status, status_straight, final_checksum(run_dir), final_checksum(straight),
            output[-1500:]))
        return 1
    print("ok   time_limit: stopped after step %d, %.1f s before the deadline; %s; resumed, final "
          "parameters bitwise equal" % (step, deadline - ended, line[0].split("| ", 1)[1]))
    return 0


def squeue(tessera, config, work):
    """Slurm 22.05 sets SLURM_JOB_ID but not SLURM_JOB_END_TIME: the end comes from squeue."""
    bin_dir = os.path.join(work, "bin")
    os.makedirs(bin_dir)
    calls = os.path.join(work, "squeue_calls")
    end = int(time.time()) + 8
    fake = os.path.join(bin_dir, "squeue")
    with open(fake, "w") as script:
        script.write("#!/bin/sh\necho \"$SLURM_TIME_FORMAT $*\" >> %s\necho %d\n" % (calls, end))
    os.chmod(fake, stat.S_IRWXU)
    env = dict(ENV, SLURM_JOB_ID="4242", PATH=bin_dir + os.pathsep + ENV["PATH"])
    run_dir = os.path.join(work, "squeue_run")
    status, output = train(tessera, config, run_dir, 2, ["train.steps=100000",
                                                         "run.stop_margin_s=4"], env)
    ended = time.time()
    asked = open(calls).read().splitlines() if os.path.exists(calls) else []
    stops = records(run_dir, "stop")
    problems = [what for what, bad in [
        ("exit status %d, expected 75" % status, status != STOPPED_EARLY),
        ("squeue called as %s" % asked, asked != ["%s -h -j 4242 -o %e"]),
        ("no '(from squeue)' in the output", "(from squeue)" not in output),
        ("stop records %s" % stops, len(stops) != 1 or stops[0]["reason"] != "time_limit"),
        ("ended %.1f s after the job's end" % (ended - end), ended >= end)] if bad]
    if problems:
        print("FAIL squeue: %s\n%s" % ("; ".join(problems), output[-2000:]))
        return 1
    print("ok   squeue: asked once (%s), stopped after step %d with exit 75 before the job's end"
          % (asked[0], stops[0]["step"]))
    return 0


def main():
    tessera, config_dir, case = sys.argv[1:4]
    config = os.path.join(config_dir, "tiny.toml")
    with tempfile.TemporaryDirectory() as work:
        failures = {"signal": signals, "time_limit": time_limit, "squeue": squeue}[case](
            tessera, config, work)
    if failures:
        sys.exit("%d early-stop check(s) failed" % failures)


if __name__ == "__main__":
    main()
