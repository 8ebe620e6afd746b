"""A resume over a damaged newest checkpoint falls back to the older one, on 2 ranks.

Two damages that used to end the resume on every rank (an HDF5 error, or a 32 GiB allocation):
8 bytes flipped in the object header of the group that holds the model, before the first
dataset; and an extra dataset of shape [1, 2^33] floats with no data, added to the file. Each
time the run must print one warning naming the damaged file, resume from the step before and
finish with status 0.

usage: test_damaged_resume.py TESSERA CONFIG_DIR
"""
import os
import subprocess
import sys
import tempfile

import h5py

ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
for name in ("SLURM_JOB_ID", "SLURM_JOB_END_TIME"):
    ENV.pop(name, None)


def train(tessera, configs, run_dir, steps):
    command = ["mpiexec", "-n", "2", "--oversubscribe", tessera, "train",
               os.path.join(configs, "tiny.toml")]
    for setting in ['run.dir="%s"' % run_dir, "train.steps=%d" % steps, "train.warmup_steps=2",
                    "checkpoint.every=2", "eval.every=0", 'log.progress="plain"',
                    "train.micro_batch=4"]:
        command += ["--set", setting]
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)


def flip_group_header(path):
    with h5py.File(path, "r") as checkpoint:
        address = h5py.h5o.get_info(checkpoint["model"].id).addr
    with open(path, "r+b") as raw:
        raw.seek(address)
        data = bytearray(raw.read(8))
        raw.seek(address)
        raw.write(bytes(byte ^ 0xA5 for byte in data))


def add_forged_dataset(path):
    with h5py.File(path, "r+") as checkpoint:
        checkpoint.create_dataset("forged", shape=(1, 2 ** 33), dtype="f4")  # never written


def case(tessera, configs, work, name, damage):
    run_dir = os.path.join(work, name)
    first = train(tessera, configs, run_dir, 4)
    if first.returncode != 0:
        print("FAIL %s: the first run: %s" % (name, first.stdout[-2000:] + first.stderr[-2000:]))
        return 1
    damaged = os.path.join(run_dir, "checkpoints", "step_000000004.h5")
    damage(damaged)
    resumed = train(tessera, configs, run_dir, 6)
    output = resumed.stdout + resumed.stderr
    warnings = [line for line in output.splitlines()
                if "step_000000004.h5" in line and "falling back" in line]
    problems = []
    if resumed.returncode != 0:
        problems.append("exit status %d" % resumed.returncode)
    if len(warnings) != 1:
        problems.append("%d warnings naming the damaged file (want 1)" % len(warnings))
    if "resumed from the checkpoint after step 2" not in output:
        problems.append("no resume from step 2")
    if problems:
        print("FAIL %s: %s\n%s" % (name, "; ".join(problems), output[-3000:]))
        return 1
    print("ok   %s: %s" % (name, warnings[0].strip()))
    return 0


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_damaged_resume.py TESSERA CONFIG_DIR")
    tessera, configs = sys.argv[1:]
    with tempfile.TemporaryDirectory() as work:
        failures = case(tessera, configs, work, "group-header", flip_group_header)
        failures += case(tessera, configs, work, "forged-dataset", add_forged_dataset)
    if failures:
        sys.exit("%d case(s) failed" % failures)


if __name__ == "__main__":
    main()
