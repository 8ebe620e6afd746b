"""What the inference tests share: running tessera (under mpiexec for several ranks), checks that
are counted, and two tiny models trained on byte-tokenized text (gpt2; openlm with RMSNorm and
rotary), each exported for the model written from Transformers' equations."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1")
SEQ_LEN = 64
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def finish():
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")


def run(args, expect=0, ranks=1):
    command = [str(a) for a in args]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + command
    result = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if result.returncode != expect:
        sys.exit(f"{' '.join(command)} exited {result.returncode} (expected {expect}):\n"
                 f"{result.stdout}{result.stderr}")
    return result


def tessera_lines(stderr: str) -> list[str]:
    """tessera's own lines (mpiexec adds a banner of its own about an exit status)."""
    return [line for line in stderr.splitlines() if line.startswith("tessera")]


def metrics(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("kind") == kind]


def prepare_text(tessera, work: Path) -> Path:
    text = work / "text.txt"
    text.write_text("".join(f"Line {i}: the quick brown fox, and {i * 7} lazy dogs.\n"
                            for i in range(2000)))
    data = work / "data"
    run([tessera, "prepare", text, "-o", data, "--progress", "plain"])
    return data


MODELS = {"gpt2": ("tiny.toml", []), "openlm": ("tiny-openlm.toml", ["model.norm=\"rmsnorm\""])}


def train_model(tessera, work: Path, data: Path, name: str) -> Path:
    """Trains model `name` of MODELS 40 steps on `data`; returns its run directory."""
    config, extra = MODELS[name]
    run_dir = work / f"run-{name}"
    settings = [f"data.source={data}", "train.steps=40", "train.warmup_steps=2", "eval.every=40",
                "eval.batches=3", "log.progress=\"plain\"", "train.micro_batch=4",
                "train.global_batch=8", f"run.dir={run_dir}"] + extra
    run([tessera, "train", ROOT / "configs" / config] + sum((["--set", s] for s in settings), []))
    return run_dir


def export(tessera, checkpoint: Path, model_dir: Path) -> Path:
    run([tessera, "export", checkpoint, "--to", model_dir])
    return model_dir
