"""Checkpoint write and read bandwidth at 1, 2, 4 and 8 ranks, next to the raw sequential
write and read bandwidth of the same disk measured in the same run with dd.

The model is a 4-layer d_model 1024 GPT-2 (about 62 M parameters: a 0.75 GB checkpoint with
the AdamW moments). Each layout trains one step and saves (`train.stop_after = 1`), then a
second start restores that checkpoint; metrics.jsonl records both times. Checkpoints are
written to a directory under /tmp (or $TESSERA_BENCH_DIR): the disk being measured. Before the
restore, the checkpoint's pages are dropped from the page cache (as dd's read bypasses it), so
the restore reads the disk, not memory. A shared disk's rate varies from minute to minute:
each row, and dd, is run REPEATS times and the medians are shown, with dd measured between
the rows.

usage: bench_checkpoint.py [TESSERA] [CONFIG_DIR] [REPEATS]
"""
import json
import os
import re
import shutil
import statistics
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


def evict_from_page_cache(directory):
    """Drops the cached pages of every file under `directory` (written and synced already)."""
    for root, _, names in os.walk(directory):
        for name in names:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)


def run(tessera, config, ranks, layout, run_dir, extra):
    dp, tp, pp = layout
    command = [tessera, "train", config]
    for setting in MODEL + extra + ["parallel.dp=%d" % dp, "parallel.tp=%d" % tp,
                                    "parallel.pp=%d" % pp, "run.dir=" + run_dir]:
        command += ["--set", setting]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + command
    subprocess.run(command, env=ENV, check=True, capture_output=True)


def save_and_restore(tessera, config, ranks, layout, run_dir):
    """(bytes, write seconds, restore seconds) of one save and the restore of it."""
    run(tessera, config, ranks, layout, run_dir, ["train.stop_after=1"])
    evict_from_page_cache(os.path.join(run_dir, "checkpoints"))
    run(tessera, config, ranks, layout, run_dir, [])  # restores step 1, trains step 2
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    save = next(r for r in records if r.get("kind") == "checkpoint")
    load = next(r for r in records if r.get("kind") == "restore")
    shutil.rmtree(run_dir)
    return save["bytes"], save["seconds"], load["seconds"]


def main():
    tessera = sys.argv[1] if len(sys.argv) > 1 else "build/release/tessera"
    config = os.path.join(sys.argv[2] if len(sys.argv) > 2 else "configs", "tiny.toml")
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    base = os.environ.get("TESSERA_BENCH_DIR", tempfile.gettempdir())
    work = tempfile.mkdtemp(dir=base)
    try:
        rows, disks = [], []
        for ranks, layout in LAYOUTS:
            writes, reads = [], []
            for _ in range(repeats):
                disks.append(dd_bandwidth(work))
                size, write_s, read_s = save_and_restore(
                    tessera, config, ranks, layout, os.path.join(work, "r%d" % ranks))
                writes.append(size / write_s / 1e9)
                reads.append(size / read_s / 1e9)
            rows.append((ranks, layout, size, writes, reads))
        dd_write = statistics.median(d["write"] for d in disks)
        dd_read = statistics.median(d["read"] for d in disks)
        print("disk under %s: dd sequential write %.2f GB/s (fdatasync), read %.2f GB/s (direct);"
              " medians of %d, ranges %.2f-%.2f and %.2f-%.2f" % (
                  base, dd_write, dd_read, len(disks), min(d["write"] for d in disks),
                  max(d["write"] for d in disks), min(d["read"] for d in disks),
                  max(d["read"] for d in disks)))
        print("%-6s %-10s %8s %12s %12s %8s %8s  %s" % (
            "ranks", "layout", "file GB", "write GB/s", "read GB/s", "vs dd w", "vs dd r",
            "(each run's write / read GB/s)"))
        for ranks, layout, size, writes, reads in rows:
            write, read = statistics.median(writes), statistics.median(reads)
            print("%-6d %-10s %8.2f %12.2f %12.2f %7.0f%% %7.0f%%  %s / %s" % (
                ranks, "%d,%d,%d" % layout, size / 1e9, write, read, 100 * write / dd_write,
                100 * read / dd_read, " ".join("%.2f" % w for w in writes),
                " ".join("%.2f" % r for r in reads)))
        # Asynchronous saving on one rank: how long training is blocked next to the write.
        for _ in range(repeats):
            run_dir = os.path.join(work, "async")
            run(tessera, config, 1, (1, 1, 1), run_dir, ["checkpoint.async=true"])
            records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
            save = next(r for r in records if r.get("kind") == "checkpoint")
            print("checkpoint.async on 1 rank: training blocked %.2f s of a %.2f s write (%.1f%%)"
                  % (save["blocked_s"], save["seconds"], 100 * save["blocked_s"] / save["seconds"]))
            shutil.rmtree(run_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
