"""A resume over a damaged newest checkpoint falls back to the older one, on 2 ranks.

Four damages that used to end the resume on every rank (an HDF5 error, a 32 GiB allocation,
a usage error) or resume at the wrong step: 8 bytes flipped in the object header of the group
that holds the model, before the first dataset; an extra dataset of shape [1, 2^33] floats with
no data, added to the file; the metadata attribute cut in half; and its step changed to one the
file's name does not give. Each time the run must print one warning naming the damaged file,
resume from the step before and finish with status 0.

Then damaged data, which is found only after it was read (into the model's own buffers, on the
CPU backend): one byte flipped in a weight's data. The resume must fall back to the step before
and end bitwise where an uninterrupted run ends; and with every checkpoint's data damaged, the
run must start afresh and still end where the uninterrupted run ends.

usage: test_damaged_resume.py TESSERA CONFIG_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy

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


def cut_metadata(path):
    """The metadata attribute (the step, the configuration) cut in half: no longer JSON."""
    with h5py.File(path, "r+") as checkpoint:
        text = bytes(checkpoint.attrs["metadata"])
        del checkpoint.attrs["metadata"]
        checkpoint.attrs["metadata"] = numpy.bytes_(text[:len(text) // 2])


def forge_metadata_step(path):
    """The metadata's step made 3 in the file of step 4 (valid JSON that disagrees with the
    file's name: resuming from it would repeat or skip steps)."""
    with h5py.File(path, "r+") as checkpoint:
        metadata = json.loads(bytes(checkpoint.attrs["metadata"]))
        metadata["step"] = 3
        del checkpoint.attrs["metadata"]
        checkpoint.attrs["metadata"] = numpy.bytes_(json.dumps(metadata).encode())


def flip_weight_data(path):
    with h5py.File(path, "r") as checkpoint:
        dataset = checkpoint["model/layers/0/mlp/fc/weight"]
        at = dataset.id.get_offset() + dataset.id.get_storage_size() // 2
    with open(path, "r+b") as raw:
        raw.seek(at)
        byte = raw.read(1)[0]
        raw.seek(at)
        raw.write(bytes([byte ^ 0x5A]))


def final_checksum(run_dir):
    checksums = [json.loads(line).get("parameter_checksum")
                 for line in open(os.path.join(run_dir, "metrics.jsonl"))
                 if '"final"' in line]
    return checksums[-1] if checksums else None


def case(tessera, configs, work, name, damage, straight=None):
    run_dir = os.path.join(work, name)
    first = train(tessera, configs, run_dir, 4)
    if first.returncode != 0:
        print("FAIL %s: the first run: %s" % (name, first.stdout[-2000:] + first.stderr[-2000:]))
        return 1
    damaged = ["step_000000004.h5"] + (["step_000000002.h5"] if name == "all-data" else [])
    for file in damaged:
        damage(os.path.join(run_dir, "checkpoints", file))
    resumed = train(tessera, configs, run_dir, 6)
    output = resumed.stdout + resumed.stderr
    problems = []
    if resumed.returncode != 0:
        problems.append("exit status %d" % resumed.returncode)
    for file in damaged:
        warnings = [line for line in output.splitlines() if file in line and "falling back" in line]
        if len(warnings) != 1:
            problems.append("%d warnings naming %s (want 1)" % (len(warnings), file))
    resumed_from = "resumed from the checkpoint after step 2"
    if (resumed_from in output) != (name != "all-data"):
        problems.append("resumed from step 2: %s" % (resumed_from in output))
    if straight and final_checksum(run_dir) != final_checksum(straight):
        problems.append("final parameters %s, uninterrupted run's %s" % (
            final_checksum(run_dir), final_checksum(straight)))
    if problems:
        print("FAIL %s: %s\n%s" % (name, "; ".join(problems), output[-3000:]))
        return 1
    print("ok   %s" % name)
    return 0


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_damaged_resume.py TESSERA CONFIG_DIR")
    tessera, configs = sys.argv[1:]
    with tempfile.TemporaryDirectory() as work:
        failures = case(tessera, configs, work, "group-header", flip_group_header)
        failures += case(tessera, configs, work, "forged-dataset", add_forged_dataset)
        failures += case(tessera, configs, work, "cut-metadata", cut_metadata)
        failures += case(tessera, configs, work, "forged-step", forge_metadata_step)
        straight = os.path.join(work, "straight")
        if train(tessera, configs, straight, 6).returncode != 0:
            sys.exit("the uninterrupted run failed")
        failures += case(tessera, configs, work, "newest-data", flip_weight_data, straight)
        failures += case(tessera, configs, work, "all-data", flip_weight_data, straight)
    if failures:
        sys.exit("%d case(s) failed" % failures)


if __name__ == "__main__":
    main()
