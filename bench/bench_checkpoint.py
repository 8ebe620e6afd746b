"""Checkpoint write and read bandwidth at 1, 2, 4 and 8 ranks, next to the raw sequential
write and read bandwidth of the same disk measured in the same run with dd.

The model is a 4-layer d_model 1024 GPT-2 (about 62 M parameters: a 0.75 GB checkpoint with
the AdamW moments). Each layout trains one step and saves (`train.stop_after = 1`), then a
second start restores that checkpoint; metrics.jsonl records both times. Checkpoints are
written to a directory under /tmp (or $TESSERA_BENCH_DIR): the disk being measured. Before the
restore, the checkpoint's pages are dropped from the page cache (as dd's read bypasses it), so
the restore reads the disk, not memory. A shared disk's rate varies from minute to minute:
each row, and dd, is run REPEATS times and the medians are shown, with dd measured before
each save or after each restore, in turn; then each save's rates against that dd run (paired
ratios). dd
writes a new file beside the one it wrote last (as a checkpoint is written beside the last
checkpoint), alone, while another process holds as much memory as the trainer, and with
O_DIRECT (as tessera writes a tensor's whole pages), the three in turn going first.
checkpoint.async is measured on a save with a step after it, whose optimizer update waits for
the save's snapshot.

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


def dd_rate(command):
    """GB/s that a dd command reports."""
    output = subprocess.run(command, capture_output=True, text=True).stderr
    rate = re.search(r"([\d.,]+) ([GM])B/s", output)
    value = float(rate.group(1).replace(",", "."))
    return value if rate.group(2) == "G" else value / 1000


HELD_GB = 1.0  # about what the 1-rank trainer of MODEL holds (metrics.jsonl "memory": 1.02 GB)


def dd_bandwidth(directory, turn, gigabytes=1):
    """The disk's sequential rates in GB/s: 'write', a new file (with fdatasync) beside the one
    the last call left, as a checkpoint is written beside the last checkpoint; 'held', the same
    while another process holds HELD_GB of memory it has just touched, as the trainer does when
    it saves; 'direct', the write with O_DIRECT (past the page cache, as tessera writes a
    tensor's pages); 'read', of the last file written, with O_DIRECT. On a VM whose fresh memory
    is slow to touch, the page cache of a new file gets the pages a process freed last, unless
    a process took them: then it touches fresh ones and 'held' is far below 'write'
    (doc/performance.md, "Checkpoints"). The three writes take turns at going first (`turn`),
    so that none always follows the quiet spell of the trainer's runs (a virtual disk may write
    a burst after a quiet spell): with 'write' always first it measured 1.4-1.7x 'direct',
    taking turns 1.1-1.3x (doc/measurements/checkpoint-bandwidth-turns.txt)."""
    kept = os.path.join(directory, "dd-kept.bin")
    new = os.path.join(directory, "dd-new.bin")
    write = ["dd", "if=/dev/zero", "of=" + new, "bs=16M", "count=%d" % (64 * gigabytes),
             "conv=fdatasync"]
    holder = ("import sys; held = bytearray(int(%g * 1e9)); held[::4096] = b'x' * "
              "len(held[::4096]); print(flush=True); sys.stdin.read()" % HELD_GB)

    def held():
        with subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE) as process:
            process.stdout.readline()  # the memory is held
            rate = dd_rate(write)
            process.stdin.close()
        return rate

    writes = [("write", lambda: dd_rate(write)),
              ("direct", lambda: dd_rate(write + ["oflag=direct"])), ("held", held)]
    result = {}
    for kind, measure in writes[turn % 3:] + writes[:turn % 3]:
        result[kind] = measure()
        os.replace(new, kept)
    result["read"] = dd_rate(["dd", "if=" + kept, "of=/dev/null", "bs=16M", "iflag=direct"])
    return result


def paired_ratios(disk, write, read):
    """A save's and its restore's rates as percentages of the dd run beside them: a
    shared disk's rate drifts from minute to minute, and a ratio to dd's median mixes moments
    minutes apart."""
    ratios = {kind: 100 * write / disk[kind] for kind in ("write", "held", "direct")}
    ratios["read"] = 100 * read / disk["read"]
    return ratios


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
            writes, reads, paired = [], [], []
            for repeat in range(repeats):
                # dd before the save, then after the restore, in turn: a save straight after
                # dd's 3 GiB of writes may find a virtual disk's burst spent, and dd straight
                # after the quiet of a restore's reads may find it refilled.
                if repeat % 2 == 0:
                    disks.append(dd_bandwidth(work, len(disks)))
                size, write_s, read_s = save_and_restore(
                    tessera, config, ranks, layout, os.path.join(work, "r%d" % ranks))
                if repeat % 2 == 1:
                    disks.append(dd_bandwidth(work, len(disks)))
                writes.append(size / write_s / 1e9)
                reads.append(size / read_s / 1e9)
                paired.append(paired_ratios(disks[-1], writes[-1], reads[-1]))
            rows.append((ranks, layout, size, writes, reads, paired))
        dd = {kind: statistics.median(d[kind] for d in disks) for kind in disks[0]}
        ranges = {kind: (min(d[kind] for d in disks), max(d[kind] for d in disks))
                  for kind in disks[0]}
        print("disk under %s, dd medians of %d (ranges): write of a new file beside the last "
              "%.2f GB/s (%.2f-%.2f), the same while %.1f GB is held %.2f (%.2f-%.2f), the same "
              "with O_DIRECT %.2f (%.2f-%.2f), read (direct) %.2f (%.2f-%.2f)"
              % (base, len(disks), dd["write"], *ranges["write"], HELD_GB, dd["held"],
                 *ranges["held"], dd["direct"], *ranges["direct"], dd["read"], *ranges["read"]))
        print("%-6s %-10s %8s %10s %10s %8s %10s %10s %8s  %s" % (
            "ranks", "layout", "file GB", "write GB/s", "read GB/s", "vs dd w", "vs dd held",
            "vs dd dir w", "vs dd r", "(each run's write / read GB/s)"))
        for ranks, layout, size, writes, reads, _ in rows:
            write, read = statistics.median(writes), statistics.median(reads)
            print("%-6d %-10s %8.2f %10.2f %10.2f %7.0f%% %9.0f%% %9.0f%% %7.0f%%  %s / %s" % (
                ranks, "%d,%d,%d" % layout, size / 1e9, write, read, 100 * write / dd["write"],
                100 * write / dd["held"], 100 * write / dd["direct"], 100 * read / dd["read"],
                " ".join("%.2f" % w for w in writes), " ".join("%.2f" % r for r in reads)))
        print("the same, each save and restore against the dd run beside it (medians of "
              "the %d ratios per row):" % repeats)
        for ranks, layout, _, _, _, paired in rows:
            medians = {kind: statistics.median(p[kind] for p in paired) for kind in paired[0]}
            print("%-6d %-10s  write vs dd w %3.0f%%, held %3.0f%%, O_DIRECT %3.0f%%; "
                  "restore vs dd r %3.0f%%" % (ranks, "%d,%d,%d" % layout, medians["write"],
                                               medians["held"], medians["direct"],
                                               medians["read"]))
        # Asynchronous saving on one rank: how long training is blocked next to the write, for
        # a save with a step after it (whose optimizer update waits for the snapshot).
        for _ in range(repeats):
            run_dir = os.path.join(work, "async")
            run(tessera, config, 1, (1, 1, 1), run_dir,
                ["checkpoint.async=true", "train.steps=4", "checkpoint.every=2"])
            records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
            save = next(r for r in records if r.get("kind") == "checkpoint" and r["step"] == 2)
            print("checkpoint.async on 1 rank: training blocked %.2f s of a %.2f s write (%.1f%%)"
                  % (save["blocked_s"], save["seconds"], 100 * save["blocked_s"] / save["seconds"]))
            shutil.rmtree(run_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
