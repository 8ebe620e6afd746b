"""Checkpoint write and read bandwidth at 1, 2, 4 and 8 ranks, next to the raw sequential
write and read bandwidth of the same disk measured in the same run with dd.

The model is a 4-layer d_model 1024 GPT-2 (about 62 M parameters: a 0.75 GB checkpoint with
the AdamW moments). Each layout trains one step and saves (`train.stop_after = 1`), then a
second start restores that checkpoint; metrics.jsonl records both times. Checkpoints are
written to a directory under /tmp (or $TESSERA_BENCH_DIR): the disk being measured.

usage: bench_checkpoint.py [TESSERA] [CONFIG_DIR]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MODEL = ["model.n_layers=4", "model.d_model=1024", "model.n_heads=16", "model.seq_len=64",
         "model.vocab_size=8192", "train.global_batch=8", "train.micro_batch=1",
         "train.steps=2", "train.warmup_steps=1", "eval.every=0", "log.progress=plain"]
LAYOUTS = [(1, (1, 1, 1)), (2, (2, 1, 1)), (4, (2, 2, 1)), (8, (2, 2, 2))]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def dd_bandwidth(directory, gigabytes=1):
    """Sequential write (with fdatasync) and read (after dropping the file's cache) in GB/s."""
    target = os.path.join(directory, "dd.bin")
    result = {}
    for kind, command in [
            ("write", ["dd", "if=/dev/zero", "of=" + target, "bs=16M",
                       "count=%d" % (64 * gigabytes), "conv=fdatasync"]),
            ("read", ["dd", "if=" + target, "of=/dev/null", "bs=16M", "iflag=direct"])]:
        output = subprocess.run(command, capture_output=True, text=True).stderr
        rate = re.search(r"([\d.,]+) ([GM])B/s", output)
        value = float(rate.group(1).replace(",", "."))
        result[kind] = value if rate.group(2) == "G" else value / 1000
    os.remove(target)
    return result


def run(tessera, config, ranks, layout, run_dir, extra):
    dp, tp, pp = layout
    command = [tessera, "train", config]
    for setting in MODEL + extra + ["parallel.dp=%d" % dp, "parallel.tp=%d" % tp,
                                    "parallel.pp=%d" % pp, "run.dir=" + run_dir]:
        command += ["--set", setting]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + command
    subprocess.run(command, env=ENV, check=True, capture_output=True)


def main():
    tessera = sys.argv[1] if len(sys.argv) > 1 else "build/release/tessera"
    config = os.path.join(sys.argv[2] if len(sys.argv) > 2 else "configs", "tiny.toml")
    base = os.environ.get("TESSERA_BENCH_DIR", tempfile.gettempdir())
    work = tempfile.mkdtemp(dir=base)
    try:
        disk = dd_bandwidth(work)
        print("disk under %s: dd sequential write %.2f GB/s (fdatasync), read %.2f GB/s (direct)"
              % (base, disk["write"], disk["read"]))
        print("%-6s %-10s %10s %12s %12s %10s %10s" % ("ranks", "layout", "file GB", "write GB/s",
                                                      "read GB/s", "vs dd w", "vs dd r"))
        for ranks, layout in LAYOUTS:
            run_dir = os.path.join(work, "r%d" % ranks)
            run(tessera, config, ranks, layout, run_dir, ["train.stop_after=1"])
            run(tessera, config, ranks, layout, run_dir, [])  # restores step 1, trains step 2
            records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
            save = next(r for r in records if r.get("kind") == "checkpoint")
            load = next(r for r in records if r.get("kind") == "restore")
            write_rate = save["bytes"] / save["seconds"] / 1e9
            read_rate = load["bytes"] / load["seconds"] / 1e9
            print("%-6d %-10s %10.2f %12.2f %12.2f %9.0f%% %9.0f%%" % (
                ranks, "%d,%d,%d" % layout, save["bytes"] / 1e9, write_rate, read_rate,
                100 * write_rate / disk["write"], 100 * read_rate / disk["read"]))
            shutil.rmtree(run_dir)
        # Asynchronous saving on one rank: how long training is blocked next to the write.
        run_dir = os.path.join(work, "async")
        run(tessera, config, 1, (1, 1, 1), run_dir, ["checkpoint.async=true"])
        records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
        save = next(r for r in records if r.get("kind") == "checkpoint")
        print("checkpoint.async on 1 rank: training blocked %.2f s of a %.2f s write (%.0f%%)" %
              (save["blocked_s"], save["seconds"], 100 * save["blocked_s"] / save["seconds"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
