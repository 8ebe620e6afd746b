"""`tessera prepare` as users run it: over MPI ranks, stopped by SIGKILL and resumed, and a bad
JSON line met by one rank of two.

    test_prepare_cli.py TESSERA REFERENCE_DIR WORK_DIR TINYSHAKESPEARE

The corpus is tiny-shakespeare's paragraphs as gzip-compressed JSON Lines, tokenized with GPT-2's
tokenizer.json (make_tokenizers.py). Every run must give the shards of the single-process run.
"""
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")


def fail(message):
    sys.exit("FAILED: " + message)


def checksums(directory):
    with open(os.path.join(directory, "dataset.json")) as f:
        dataset = json.load(f)
    return [shard["fnv1a64"] for split in ("train", "validation")
            for shard in dataset["splits"][split]["shards"]]


def prepare(tessera, args, ranks=1):
    command = ([tessera, "prepare"] if ranks == 1 else
               ["mpirun", "-n", str(ranks), "--oversubscribe", tessera, "prepare"])
    return subprocess.run(command + args + ["--progress", "plain"], capture_output=True,
                          text=True, env=MPI_ENV)


def main():
    tessera, reference_dir, work, tinyshakespeare = sys.argv[1:5]
    if not os.path.isfile(tinyshakespeare):
        print(f"skipped: {tinyshakespeare} not found")
        sys.exit(77)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([sys.executable, os.path.join(reference_dir, "make_tokenizers.py"),
                    reference_dir, work], check=True)
    with open(tinyshakespeare, encoding="utf-8") as f:
        paragraphs = f.read().split("\n\n")
    corpus = os.path.join(work, "corpus.jsonl.gz")
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        for copy in range(3):
            for paragraph in paragraphs:
                f.write(json.dumps({"text": paragraph + "\n\n", "copy": copy}) + "\n")
    common = [corpus, "--tokenizer", "hf:" + os.path.join(work, "gpt2.json"),
              "--chunk-mib", "0.05"]

    one = os.path.join(work, "one")
    result = prepare(tessera, common + ["-o", one])
    if result.returncode != 0:
        fail(f"prepare on one rank exited {result.returncode}: {result.stderr}")
    expected = checksums(one)
    print("ok   one rank:", result.stdout.strip().splitlines()[-1])

    two = os.path.join(work, "two")
    result = prepare(tessera, common + ["-o", two], ranks=2)
    if result.returncode != 0 or checksums(two) != expected:
        fail(f"prepare on two ranks differs or failed ({result.returncode}): {result.stderr}")
    print("ok   two ranks give the same shards:", result.stdout.strip().splitlines()[-1])

    # Stopped by SIGKILL once a few chunks are written, then run again.
    stopped = os.path.join(work, "stopped")
    process = subprocess.Popen([tessera, "prepare"] + common + ["-o", stopped, "--progress",
                                                                "plain"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunk_dir = os.path.join(stopped, ".prepare")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.isdir(chunk_dir) and sum(n.startswith("chunk_") and n.endswith(".bin")
                                            for n in os.listdir(chunk_dir)) >= 3:
            break
        time.sleep(0.005)
    if process.poll() is not None:
        fail("prepare ended before it could be stopped; the corpus is too small for this test")
    process.send_signal(signal.SIGKILL)
    process.wait()
    if os.path.exists(os.path.join(stopped, "dataset.json")):
        fail("a stopped prepare left a dataset.json, as if it had finished")
    result = prepare(tessera, common + ["-o", stopped], ranks=2)
    if result.returncode != 0:
        fail(f"the resumed prepare exited {result.returncode}: {result.stderr}")
    if "resuming:" not in result.stdout:
        fail(f"the resumed prepare did not keep the finished chunks:\n{result.stdout}")
    if checksums(stopped) != expected:
        fail("the resumed prepare gives other shards than the uninterrupted one")
    print("ok   stopped and resumed:", [l for l in result.stdout.splitlines()
                                         if "resuming" in l][0])

    # A bad line in the second half of a file: the rank that reads it says so, once.
    bad = os.path.join(work, "bad.jsonl")
    with open(bad, "w") as f:
        for i in range(200):
            f.write(json.dumps({"text": f"document {i} " * 40}) + "\n")
        f.write('{"txt": "no text key"}\n')
    result = prepare(tessera, [bad, "-o", os.path.join(work, "bad"), "--chunk-mib", "0.01"],
                     ranks=2)
    errors = [l for l in result.stderr.splitlines() if l.startswith("tessera")]
    if result.returncode != 2 or len(errors) != 1 or "bad.jsonl line 201" not in errors[0]:
        fail(f"a bad line under two ranks: exit {result.returncode}, stderr:\n{result.stderr}")
    print("ok   a bad line on one rank:", errors[0])


if __name__ == "__main__":
    main()
