"""The run manifest and `tessera reproduce`.

A run on a prepared dataset, stopped at step 6 (train.stop_after) and resumed to step 12, must
leave run.dir/manifest.json with this build, the config and its FNV-1a hash, the layout, the
host, every shard's checksum (as dataset.json lists them), the Slurm job, and the resume appended
to "restarts"; its last checkpoint carries the same JSON as the attribute "manifest".
`tessera reproduce --dry-run` finds no difference in the manifest as written, and exactly the
edited field in an edited copy (and a damaged shard); `tessera reproduce` trains again into a
new directory and ends with the same final parameter checksum. Bad input is one line, exit 2.

usage: test_reproduce.py TESSERA CONFIG_DIR
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import h5py

BASE = ["train.steps=12", "train.warmup_steps=2", "eval.every=0", "log.every=1",
        "log.progress=plain", "model.n_layers=1", "model.d_model=32", "model.n_heads=2",
        "model.seq_len=32", "train.global_batch=4", "train.micro_batch=2"]
FAILURES = []


def check(ok, what):
    print("%-4s %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        FAILURES.append(what)
    return ok


def run(args, env, timeout=300):
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def fnv1a64_hex(data):
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % value


def final_checksum(run_dir):
    finals = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))
              if '"kind":"final"' in l]
    return finals[-1]["parameter_checksum"] if finals else None


def manifest_content(manifest, data_dir, run_dir):
    build = manifest["build"]
    check(manifest["manifest_version"] == 1, "manifest_version 1")
    check(re.fullmatch(r"[0-9a-f]{40}|unknown", build["git_commit"]) is not None,
          "git commit recorded: %s" % build["git_commit"])
    mpi_version = subprocess.run(["mpiexec", "--version"], capture_output=True, text=True).stdout
    number = re.search(r"(\d+\.\d+\.\d+)", mpi_version).group(1)
    check(number in build["mpi"], "MPI library %s (mpiexec says %s)" % (build["mpi"][:40], number))
    check(re.fullmatch(r"1\.\d+\.\d+", build["hdf5"]) is not None, "HDF5 " + build["hdf5"])
    check(build["blas"].startswith("oneDNN ") and build["compiler"] != "",
          "BLAS %s, compiler %s" % (build["blas"], build["compiler"]))
    check(build["cuda_runtime"] is None or re.fullmatch(r"\d+\.\d+", build["cuda_runtime"]),
          "CUDA runtime: %s (null in a CPU build)" % build["cuda_runtime"])
    toml = manifest["config"]["toml"]
    check(manifest["config"]["fnv1a64"] == fnv1a64_hex(toml.encode()),
          "config hash is FNV-1a 64 of the recorded TOML")
    check('source = "%s"' % data_dir in toml and "stop_after = 6" in toml,
          "the first start's config (data.source, stop_after = 6)")
    check(manifest["seed"] == {"train": 1, "data": 1234}, "seeds %s" % manifest["seed"])
    check(manifest["layout"] == {"dp": 1, "tp": 1, "pp": 1, "ranks": 1},
          "layout %s" % manifest["layout"])
    check(manifest["hosts"] == [socket.gethostname()], "hosts %s" % manifest["hosts"])
    dataset = json.load(open(os.path.join(data_dir, "dataset.json")))
    expected = [{"split": split, "file": s["file"], "tokens": s["tokens"], "fnv1a64": s["fnv1a64"]}
                for split in ("train", "validation") for s in dataset["splits"][split]["shards"]]
    check(manifest["data"]["shards"] == expected and len(expected) >= 2,
          "%d shard checksums as dataset.json lists them" % len(expected))
    check(manifest["slurm"] == {"job_id": "777", "array_job_id": "770", "array_task_id": "7",
                                "restart_count": "0"}, "Slurm job %s" % manifest["slurm"])
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["start_time"]) is not None,
          "start time " + manifest["start_time"])
    restarts = manifest["restarts"]
    check(len(restarts) == 1 and restarts[0]["resumed_from_step"] == 6 and
          restarts[0]["slurm"]["restart_count"] == "1" and
          "stop_after = 0" in restarts[0]["config"]["toml"],
          "the resume appended to restarts (from step 6, restart count 1, stop_after = 0)")
    checkpoint = os.path.join(run_dir, "checkpoints", "step_000000012.h5")
    with h5py.File(checkpoint, "r") as f:
        check(json.loads(f.attrs["manifest"]) == manifest,
              "the last checkpoint's manifest attribute equals manifest.json")


def main():
    tessera, config_dir = sys.argv[1:3]
    config = os.path.join(config_dir, "tiny.toml")
    work = tempfile.mkdtemp()
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1", SLURM_JOB_ID="777",
                   SLURM_ARRAY_JOB_ID="770", SLURM_ARRAY_TASK_ID="7", SLURM_RESTART_COUNT="0")
        env.pop("SLURM_JOB_END_TIME", None)
        text = os.path.join(work, "text.txt")
        with open(text, "w") as out:
            for i in range(400):
                out.write("line %d: the quick brown fox jumps over the lazy dog.\n" % i)
        data_dir = os.path.join(work, "data")
        status, _, err = run([tessera, "prepare", text, "-o", data_dir], env)
        if status != 0:
            sys.exit("prepare failed: " + err)
        run_dir = os.path.join(work, "run")
        # A far deadline: the Slurm job id above must not send tessera asking squeue.
        settings = BASE + ["data.source=" + data_dir, "run.dir=" + run_dir,
                           "run.deadline=%d" % (time.time() + 86400)]
        train = [tessera, "train", config] + [a for s in settings for a in ("--set", s)]
        first = run(train + ["--set", "train.stop_after=6"], env)
        second = run(train, dict(env, SLURM_RESTART_COUNT="1"))
        if first[0] != 0 or second[0] != 0:
            sys.exit("training failed: %s %s" % (first[2][-1000:], second[2][-1000:]))
        manifest_path = os.path.join(run_dir, "manifest.json")
        manifest = json.load(open(manifest_path))
        manifest_content(manifest, data_dir, run_dir)

        # --dry-run: nothing differs from the manifest as written; nothing is trained.
        status, out, err = run([tessera, "reproduce", manifest_path, "--dry-run"], env)
        check(status == 0 and "no differences" in out and "dry run: would train" in out and
              not os.path.exists(run_dir + "-reproduce"),
              "dry run of the manifest as written: no differences, nothing trained")
        checkpoint = os.path.join(run_dir, "checkpoints", "step_000000012.h5")
        status, out, _ = run([tessera, "reproduce", checkpoint, "--dry-run"], env)
        check(status == 0 and "no differences" in out, "dry run from a checkpoint's manifest")

        # An edited field is reported, exactly, one line.
        edited = json.loads(json.dumps(manifest))
        edited["restarts"][-1]["build"]["compiler"] = "GNU 0.0"
        edited_path = os.path.join(work, "edited.json")
        json.dump(edited, open(edited_path, "w"))
        status, out, _ = run([tessera, "reproduce", edited_path, "--dry-run"], env)
        lines = [l.strip() for l in out.splitlines() if l.startswith("  ")]
        expected = "build.compiler: recorded 'GNU 0.0', here '%s'" % manifest["build"]["compiler"]
        check(status == 0 and lines == [expected] and "1 difference(s)" in out,
              "an edited field is the one difference: %s" % lines)

        # A damaged shard under a copy of the data, and the config edited to point at it.
        damaged_dir = os.path.join(work, "damaged")
        shutil.copytree(data_dir, damaged_dir)
        shard = os.path.join(damaged_dir, manifest["data"]["shards"][0]["file"])
        with open(shard, "r+b") as f:
            f.seek(200)
            byte = f.read(1)
            f.seek(200)
            f.write(bytes([byte[0] ^ 1]))
        moved = json.loads(json.dumps(manifest))
        moved["restarts"][-1]["config"]["toml"] = moved["restarts"][-1]["config"]["toml"].replace(
            data_dir, damaged_dir)
        moved_path = os.path.join(work, "moved.json")
        json.dump(moved, open(moved_path, "w"))
        status, out, _ = run([tessera, "reproduce", moved_path, "--dry-run"], env)
        lines = [l.strip() for l in out.splitlines() if l.startswith("  ")]
        check(status == 0 and len(lines) == 3 and lines[0].startswith("config.fnv1a64: recorded")
              and lines[1] == "data.source: recorded '%s', here '%s'" % (data_dir, damaged_dir)
              and lines[2] == "data shard %s: its tokens no longer match the checksum in its "
              "header" % os.path.basename(shard),
              "an edited config and a damaged shard are reported: %s" % lines)

        # A real re-run ends with the same parameters.
        again = os.path.join(work, "again")
        status, out, err = run([tessera, "reproduce", manifest_path, "--run-dir", again], env)
        check(status == 0 and final_checksum(again) == final_checksum(run_dir) and
              "final parameters: identical to the recorded run" in out,
              "reproduce re-ran 12 steps into a new directory: final checksum %s, recorded %s" % (
                  final_checksum(again) if os.path.exists(again) else None,
                  final_checksum(run_dir)))
        check(os.path.exists(os.path.join(again, "manifest.json")), "the re-run has its manifest")

        # Bad input: one line, exit 2.
        for args, word in [([os.path.join(work, "none.json")], "not found"),
                           ([os.path.join(data_dir, "dataset.json")], "not a tessera run manifest"),
                           ([manifest_path, "--run-dir", again], "already holds checkpoints")]:
            status, out, err = run([tessera, "reproduce"] + args + ["--dry-run"], env)
            check(status == 2 and len(err.splitlines()) == 1 and word in err,
                  "reproduce %s: exit 2, one line: %s" % (os.path.basename(args[0]), err.strip()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        sys.exit("%d reproduce check(s) failed" % len(FAILURES))


if __name__ == "__main__":
    main()
