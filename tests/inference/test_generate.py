"""`tessera generate` end to end.

For a gpt2 and a Llama-shaped model trained on byte-tokenized text:
  1. greedy decoding (temperature 0) with the KV cache gives, token for token, what greedy
     decoding with the model written from Transformers' equations (transformers_reference.py,
     float64, the whole sequence recomputed every step) gives on the exported weights;
  2. the same tokens at tp = 2 and at pp = 2 (one model replica of two ranks);
  3. top-k = 1 and a tiny top-p are greedy; sampling with a seed is the same run to run and at
     tp = 2 and pp = 2, and other seeds give other text;
  4. bad input (top-p outside (0, 1], a negative temperature, more tokens than model.seq_len, an
     empty prompt, a job of two replicas, a model trained without a text tokenizer): one line,
     exit status 2, nothing written.

usage: test_generate.py TESSERA WORK_DIR
"""

import json
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hf_model"))
import transformers_reference  # noqa: E402
from inference_test_support import (MODELS, ROOT, check, export, finish,  # noqa: E402
                                    prepare_text, run, tessera_lines, train_model)

PROMPT = "Line 12: the quick"
NEW = 40


def generate(tessera, checkpoint, out: Path, args=(), ranks=1) -> dict:
    run([tessera, "generate", checkpoint, "--prompt", PROMPT, "--max-new-tokens", NEW,
         "--json", out, "--ignore-eos"] + list(args), ranks=ranks)
    return json.loads(out.read_text())


def reference_greedy(model_dir: Path, prompt: list[int], count: int) -> list[int]:
    ids = list(prompt)
    for _ in range(count):
        logits = transformers_reference.logits(model_dir, ids)
        ids.append(int(torch.argmax(logits[-1]).item()))
    return ids[len(prompt):]


def check_model(tessera, work, name, checkpoint, model_dir):
    greedy = generate(tessera, checkpoint, work / f"{name}-greedy.json", ["--temperature", "0"])
    check(greedy["prompt_tokens"] == list(PROMPT.encode()), f"{name}: the prompt as bytes")
    expected = reference_greedy(model_dir, greedy["prompt_tokens"], NEW)
    check(greedy["tokens"] == expected,
          f"{name}: {NEW} greedy tokens with the KV cache are the Transformers-equation model's "
          f"({greedy['text']!r})")
    for layout in ("parallel.tp=2", "parallel.pp=2"):
        other = generate(tessera, checkpoint, work / f"{name}-{layout}.json",
                         ["--temperature", "0", "--set", layout], ranks=2)
        check(other["tokens"] == greedy["tokens"], f"{name}: greedy at {layout}: the same tokens")
    for limit in (["--top-k", "1"], ["--top-p", "1e-9"]):
        narrow = generate(tessera, checkpoint, work / f"{name}-narrow.json",
                          ["--temperature", "1.5", "--seed", "5"] + limit)
        check(narrow["tokens"] == greedy["tokens"], f"{name}: {' '.join(limit)} is greedy")

    sampled = ["--temperature", "1.2", "--top-k", "40", "--top-p", "0.95", "--seed", "7"]
    first = generate(tessera, checkpoint, work / f"{name}-a.json", sampled)
    again = generate(tessera, checkpoint, work / f"{name}-b.json", sampled)
    check(first["tokens"] == again["tokens"] and first["tokens"] != greedy["tokens"],
          f"{name}: sampling with seed 7 is the same twice, and not greedy ({first['text']!r})")
    for layout in ("parallel.tp=2", "parallel.pp=2"):
        other = generate(tessera, checkpoint, work / f"{name}-s-{layout}.json",
                         sampled + ["--set", layout], ranks=2)
        check(other["tokens"] == first["tokens"], f"{name}: sampling at {layout}: the same text")
    others = [generate(tessera, checkpoint, work / f"{name}-seed{seed}.json",
                       sampled[:-1] + [str(seed)])["tokens"] for seed in (8, 9, 10)]
    check(any(tokens != first["tokens"] for tokens in others), f"{name}: other seeds, other text")


def expect_refusal(tessera, args, words, written, what, ranks=1):
    result = run([tessera, "generate"] + args, expect=2, ranks=ranks)
    lines = tessera_lines(result.stderr)
    check(len(lines) == 1 and all(w in lines[0] for w in words) and not written.exists(),
          f"refused, nothing written: {what} ({lines})")


def bad_input(tessera, work, checkpoint):
    out = work / "refused.json"
    base = [checkpoint, "--json", out, "--prompt", PROMPT]
    for value in ("0", "1.5", "-0.1"):
        expect_refusal(tessera, base + ["--top-p", value], ["--top-p", "(0, 1]"], out,
                       f"--top-p {value}")
    expect_refusal(tessera, base + ["--temperature", "-1"], ["--temperature"], out,
                   "a negative temperature")
    expect_refusal(tessera, base + ["--max-new-tokens", "60"], ["model.seq_len = 64", "46"], out,
                   "more tokens than model.seq_len")
    expect_refusal(tessera, [checkpoint, "--json", out, "--prompt", ""], ["prompt"], out,
                   "an empty prompt")
    expect_refusal(tessera, base, ["one model replica", "start tp x pp = 1"], out,
                   "two ranks of dp", ranks=2)
    expect_refusal(tessera, [checkpoint, "--prompt", PROMPT, "--json", work / "no-dir" / "x.json"],
                   ["--json"], work / "no-dir", "--json in a directory that does not exist")
    synthetic = work / "run-synthetic"
    run([tessera, "train", ROOT / "configs" / "tiny.toml", "--set", "train.steps=2", "--set",
         "train.warmup_steps=1", "--set", f"run.dir={synthetic}"])
    expect_refusal(tessera, [synthetic / "checkpoints", "--json", out, "--prompt", PROMPT],
                   ["without a text tokenizer"], out, "a model trained on the synthetic source")


def main():
    tessera, work = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = prepare_text(tessera, work)
    for name in MODELS:
        checkpoint = train_model(tessera, work, data, name) / "checkpoints"
        check_model(tessera, work, name, checkpoint,
                    export(tessera, checkpoint, work / f"hf-{name}"))
    bad_input(tessera, work, work / "run-gpt2" / "checkpoints")
    finish()


if __name__ == "__main__":
    main()
