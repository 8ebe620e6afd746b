"""No rank hangs silently: when no rank makes progress for train.hang_timeout_s, the job ends
with exit status 4 and one line naming the stuck ranks and what every rank was doing.

Cases, each within the timeout plus 30 s:
- a rank stopped with SIGSTOP (alive for the kernel, silent for MPI) in a 4-rank run: rank 0
  names it as not responding, with the others waiting for it;
- rank 0 itself stopped: rank 1 reports it;
- a rank stalled alive (debug.stall_at_step: its watchdog still answers) in a 4-rank
  tensor-parallel run: named as the rank furthest behind, its partners as waiting;
- one rank alone, stalled: the job of one process ends too;
- the whole job suspended for longer than the timeout and then continued (scontrol suspend and
  resume, a paused node): it trains on, with no hang reported (a watchdog judges only time it
  saw run).
Signals only the processes it started (found below the launcher's pid), and afterwards makes
sure none of them is left, stopped or not.

usage: test_hang.py TESSERA CONFIG_DIR
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from process_tree import descendants, rank_pid

# The node every rank runs on, as hang reports name it.
HOST = re.escape(socket.gethostname())

TIMEOUT_S = 5
HUNG = 4
GRACE_S = 30  # the bound: the job ends within the timeout plus this
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
for name in ("SLURM_JOB_ID", "SLURM_JOB_END_TIME"):
    ENV.pop(name, None)


class Run:
    """One `tessera train` of many steps, its output in `work`."""

    def __init__(self, tessera, configs, work, name, ranks, settings):
        self.log = os.path.join(work, name + ".log")
        command = [tessera, "train", os.path.join(configs, "tiny.toml")]
        if ranks > 1:
            command = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + command
        for setting in ["train.steps=1000000", "train.micro_batch=4", "eval.every=0",
                        "log.every=1", 'log.progress="plain"',
                        "train.hang_timeout_s=%d" % TIMEOUT_S,
                        'run.dir="%s"' % os.path.join(work, name)] + settings:
            command += ["--set", setting]
        self.output = open(self.log, "w")
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT,
                                        env=ENV)

    def text(self):
        with open(self.log, errors="replace") as log:
            return log.read()

    def wait_for_steps(self, count, limit_s=120):
        """True once `count` steps are logged."""
        deadline = time.time() + limit_s
        while time.time() < deadline and self.process.poll() is None:
            if len(re.findall(r"^step ", self.text(), re.M)) >= count:
                return True
            time.sleep(0.05)
        return False

    def end(self, limit_s):
        """The exit status and seconds taken, or (None, limit_s) when it was still running."""
        started = time.time()
        try:
            status = self.process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            status = None
        return status, time.time() - started

    def clean_up(self):
        """Ends whatever this run left, stopped processes included; returns their count."""
        left = descendants(self.process.pid) if self.process.poll() is None else []
        for pid in left:
            for sent in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sent)
                except OSError:
                    pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.output.close()
        return len(left)


def hang_lines(text):
    return [line for line in text.splitlines() if ": hang: " in line]


def check(name, run, status, seconds, expected):
    """Failures of one case: the status, the time, one hang line matching every `expected`."""
    failures = []
    lines = hang_lines(run.text())
    if status != HUNG:
        failures.append("exit status %s (want %d) after %.0f s" % (status, HUNG, seconds))
    if len(lines) != 1:
        failures.append("%d hang lines (want 1)" % len(lines))
    for pattern in expected:
        if not any(re.search(pattern, line) for line in lines):
            failures.append("no hang line matches %r" % pattern)
    if failures:
        print("FAIL %s: %s\n%s" % (name, "; ".join(failures), run.text()[-3000:]))
        return 1
    print("ok   %s: ended %.0f s after the fault began: %s" % (name, seconds, lines[0]))
    return 0


def stopped_rank(tessera, configs, work, victim, expected, reporter):
    """SIGSTOP rank `victim` of a 4-rank data-parallel run once it trains."""
    name = "sigstop-rank-%d" % victim
    run = Run(tessera, configs, work, name, 4, [])
    try:
        # Some steps first, so that every rank's watchdog has been heard from.
        if not run.wait_for_steps(20):
            print("FAIL %s: the run did not start:\n%s" % (name, run.text()[-2000:]))
            return 1
        time.sleep(1.5)
        pid = rank_pid(run.process.pid, victim)
        if pid is None:
            print("FAIL %s: rank %d not found among the launcher's processes" % (name, victim))
            return 1
        os.kill(pid, signal.SIGSTOP)
        status, seconds = run.end(TIMEOUT_S + GRACE_S)
        failures = check(name, run, status, seconds, expected)
        if failures == 0 and not re.search(r"rank %d of 4: hang" % reporter, run.text()):
            print("FAIL %s: the hang was not reported by rank %d" % (name, reporter))
            failures = 1
    finally:
        left = run.clean_up()
    if left:
        print("FAIL %s: %d processes of the job were left running" % (name, left))
        return 1
    return failures


def stalled_rank(tessera, configs, work, ranks, settings, expected):
    """debug.stall_at_step: a rank that stays alive and answering, but makes no progress."""
    name = "stall-%d-ranks" % ranks
    run = Run(tessera, configs, work, name, ranks, ["debug.stall_at_step=3"] + settings)
    try:
        status, seconds = run.end(TIMEOUT_S + GRACE_S + 60)  # + start-up on a busy machine
        failures = check(name, run, status, seconds, expected)
    finally:
        run.clean_up()
    return failures


def suspended_job(tessera, configs, work):
    """SIGSTOP every rank for longer than the timeout, then SIGCONT: the job must go on."""
    name = "suspend-resume"
    run = Run(tessera, configs, work, name, 2, [])
    failure = None
    try:
        if not run.wait_for_steps(20):
            failure = "the run did not start"
        else:
            ranks = [rank_pid(run.process.pid, rank) for rank in (0, 1)]
            if None in ranks:
                failure = "ranks not found among the launcher's processes"
            else:
                for pid in ranks:
                    os.kill(pid, signal.SIGSTOP)
                time.sleep(TIMEOUT_S + 3)
                steps = len(re.findall(r"^step ", run.text(), re.M))
                for pid in ranks:
                    os.kill(pid, signal.SIGCONT)
                if not run.wait_for_steps(steps + 20, limit_s=TIMEOUT_S + GRACE_S):
                    failure = "it did not train on after SIGCONT"
                elif hang_lines(run.text()):
                    failure = "a hang was reported: " + hang_lines(run.text())[0]
    finally:
        run.clean_up()
    if failure:
        print("FAIL %s: %s\n%s" % (name, failure, run.text()[-3000:]))
        return 1
    print("ok   %s: trained on after %d s suspended" % (name, TIMEOUT_S + 3))
    return 0


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_hang.py TESSERA CONFIG_DIR")
    tessera, configs = sys.argv[1:]
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        failures += stopped_rank(tessera, configs, work, 2, [
            r"stuck: rank 2 on " + HOST + r" last heard in step \d+, ", r"not responding for \d+ s",
            r"waiting for them: .*ranks? [0-9, -]*"], reporter=0)
        failures += stopped_rank(tessera, configs, work, 0, [
            r"stuck: rank 0 on " + HOST + r" last heard in step \d+, ", r"not responding"], reporter=1)
        failures += stalled_rank(tessera, configs, work, 4,
                                 ["parallel.tp=2", "debug.stall_rank=3"], [
                                     r"stuck: rank 3 on " + HOST + r" in step 3, debug.stall_at_step",
                                     r"waiting for them: .*rank 2 in step 3, forward and backward",
                                     r"ranks 0-1 in step 3, the loss all-reduce"])
        failures += stalled_rank(tessera, configs, work, 1, [], [
            r"rank 0 of 1: hang: .*stuck: rank 0 on " + HOST + r" in step 3, debug.stall_at_step",
            r"look at " + HOST + r" \(rank 0\)"])
        failures += suspended_job(tessera, configs, work)
    if failures:
        sys.exit("%d hang case(s) failed" % failures)
    print("all hang cases passed")


if __name__ == "__main__":
    main()
