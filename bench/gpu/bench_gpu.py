"""tessera next to PyTorch on one GPU: training throughput and MFU, measured in the same run.

Each model comes from its config (configs/gpt2-124m.toml, configs/openlm-1b.toml), trained on
tessera's built-in synthetic source (data.source = "synthetic": no prepared dataset needed) with
global_batch = micro_batch (no gradient accumulation). For each model and precision, tessera and
the PyTorch peer run one after the other (alternating, --repeats times), each in a fresh process:

  tessera   `tessera train CONFIG` with train.backend = "cuda" and train.precision = fp32 / bf16;
            a precision the binary refuses (exit status 2 before any work) is reported as such.
            Tokens/s come from metrics.jsonl: the elapsed time over the steps after the warm-up
            ones; peak memory is the backend's buffers at their high-water mark (the train
            records' peak_buffer_bytes). The run is killed once it has logged them, so no
            checkpoint is written.
  PyTorch   written here from the model's description, nanoGPT style (not from tessera):
            gpt2 = learned positions, LayerNorm with bias, biases on every linear, GELU (tanh),
            tied head; openlm = rotary, LayerNorm, no linear biases, SwiGLU, untied head, z-loss.
            F.scaled_dot_product_attention (causal), fused AdamW (betas 0.9 / 0.95, eps 1e-8,
            weight decay 0.1 on matrices), gradient clipping at 1.0. torch.compile per region
            (PyTorch's regional compilation): each block, whose L instances share one compiled
            graph, and the final norm + head + loss; compiling then costs one block, not L, and
            keeps the fusions inside them. fp32 = TF32 off (as tessera's cuBLAS FP32); bf16 =
            autocast, fp32 master weights. Peak memory: torch.cuda.max_memory_allocated.

Model FLOPs per token (PaLM's count, the same as tessera's model_flops_per_token):
  6 * (L * (4 d^2 + m d f) + V d) + 12 * L * T * d,   m = 2 (GELU MLP) or 3 (SwiGLU),
i.e. 6 x the parameters in matrix products (the head once) plus the attention scores and
values over the full T x T. MFU = FLOPs per token x tokens/s / peak, with the peak of the card
nvidia-smi names: dense bf16 tensor cores for bf16 runs, fp32 without tensor cores for fp32.

Rows run bf16 first: the usual way to train, and where tessera refuses bf16 (the PyTorch side is
then skipped too) the time goes to fp32. A wall-clock guard (--budget-s) skips a row (both sides)
that would not finish in time and says so. Reports per row the median tokens/s of the repeats
with their range, MFU, peak memory and tessera / PyTorch (of the medians); writes bench_gpu.json
and bench_gpu.md into --out. A model may name its micro-batch (gpt2-124m:32 is gpt2-124m at
micro-batch 32), for rows at the batch where PyTorch peaks.

usage: bench_gpu.py --tessera PATH [--configs DIR] [--out DIR] [--budget-s S] [--steps N]
                    [--repeats N] [--models gpt2-124m,gpt2-124m:32,openlm-1b]
                    [--device cuda|cpu] [--no-compile]
       bench_gpu.py --peer JSON   (one PyTorch run; prints one JSON line)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib

WARMUP_STEPS = 3  # left out of the timing: allocation, cuBLAS heuristics, torch.compile
BETAS, EPS, WEIGHT_DECAY, CLIP, LR = (0.9, 0.95), 1e-8, 0.1, 1.0, 3e-4
# Per-model settings that fit one 80 GB GPU in fp32 with AdamW: 1.4 B parameters x 16 bytes of
# weights, gradients and moments is 23 GB; a sequence of 2048 tokens keeps some 12 GB of
# activations in openlm-1b, and the attention probabilities (6 GB more) are recomputed.
MODEL_SETTINGS = {
    "openlm-1b": {"micro_batch": 2, "recompute": "selective"},
}
# Seconds one side of a row is expected to take (start, warm-up, compile, timed steps) on an H100;
# the guard starts a row only with both sides' time left. Unknown models (the tiny ones of a CPU
# check) take the default.
EXPECTED_S = {("gpt2-124m", "tessera"): 20, ("gpt2-124m", "pytorch"): 50,
              ("openlm-1b", "tessera"): 50, ("openlm-1b", "pytorch"): 70}
DEFAULT_EXPECTED_S = 20
# Dense peaks in TFLOP/s (NVIDIA's data sheets): bf16 on tensor cores, fp32 without them.
PEAKS = [("H100 PCIe", 756.0, 51.2), ("H100 NVL", 835.0, 60.0), ("H100", 989.0, 67.0),
         ("H200", 989.0, 67.0)]  # first match wins: "H100" alone is the SXM part (80GB HBM3)
USAGE_EXIT = 2  # tessera: a configuration it refuses


# ---- the model ---------------------------------------------------------------------------


def load_model(config_dir: str, spec: str) -> dict:
    """The model's shape from its config, ffn_hidden derived as tessera derives it; `spec` is a
    config name, optionally with ":MICRO_BATCH"."""
    name, _, micro_batch = spec.partition(":")
    with open(os.path.join(config_dir, name + ".toml"), "rb") as file:
        config = tomllib.load(file)
    model = dict(config["model"])
    model.setdefault("family", "gpt2")
    if not model.get("ffn_hidden"):
        d = model["d_model"]
        model["ffn_hidden"] = 4 * d if model["family"] == "gpt2" else 256 * math.ceil(8 * d / 3 / 256)
    model.setdefault("z_loss", 0.0)
    model.setdefault("rotary_base", 10000.0)
    model.setdefault("norm_eps", 1e-5)
    settings = MODEL_SETTINGS.get(name, {})
    model["micro_batch"] = (int(micro_batch) if micro_batch else
                            settings.get("micro_batch", config["train"]["micro_batch"]))
    model["recompute"] = settings.get("recompute", "none")
    model["name"] = name
    return model


def flops_per_token(model: dict) -> float:
    d, layers = model["d_model"], model["n_layers"]
    mlp_matrices = 3 if model["family"] == "openlm" else 2
    per_layer = 4 * d * d + mlp_matrices * d * model["ffn_hidden"]
    return 6.0 * (layers * per_layer + model["vocab_size"] * d) + 12.0 * layers * model["seq_len"] * d


def gpu_peaks() -> tuple[str, dict]:
    """The card's name and its peaks in TFLOP/s per precision (empty when unknown)."""
    try:
        name = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (FileNotFoundError, IndexError):
        return "no GPU (nvidia-smi)", {}
    for key, bf16, fp32 in PEAKS:
        if key in name:
            return name, {"bf16": bf16, "fp32": fp32}
    return name, {}


# ---- the PyTorch peer --------------------------------------------------------------------


def build_peer(model: dict):
    import torch
    import torch.nn.functional as F
    from torch import nn

    d, heads, seq, vocab = model["d_model"], model["n_heads"], model["seq_len"], model["vocab_size"]
    head_dim, ffn, openlm = d // heads, model["ffn_hidden"], model["family"] == "openlm"
    eps = model["norm_eps"]

    def attention(q, k, v):  # torch 1.x (a CPU check here) lacks scaled_dot_product_attention
        if hasattr(F, "scaled_dot_product_attention"):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        t = q.shape[-2]
        future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
        return scores.masked_fill(future, float("-inf")).softmax(dim=-1) @ v

    def rotate(x, cos, sin):  # rotary on pairs (first half, second half) of each head
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm_1 = nn.LayerNorm(d, eps=eps)
            self.qkv = nn.Linear(d, 3 * d, bias=not openlm)
            self.out = nn.Linear(d, d, bias=not openlm)
            self.norm_2 = nn.LayerNorm(d, eps=eps)
            if openlm:
                self.gate_up = nn.Linear(d, 2 * ffn, bias=False)
                self.down = nn.Linear(ffn, d, bias=False)
            else:
                self.fc = nn.Linear(d, ffn)
                self.proj = nn.Linear(ffn, d)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.norm_1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, heads, head_dim).transpose(1, 2) for z in (q, k, v))
            if openlm:
                q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            y = attention(q, k, v)
            x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
            h = self.norm_2(x)
            if openlm:
                gate, up = self.gate_up(h).chunk(2, dim=-1)
                return x + self.down(F.silu(gate) * up)
            return x + self.proj(F.gelu(self.fc(h), approximate="tanh"))

    class Transformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, d)
            self.positions = None if openlm else nn.Embedding(seq, d)
            self.blocks = nn.ModuleList(Block() for _ in range(model["n_layers"]))
            self.norm_f = nn.LayerNorm(d, eps=eps)
            self.head = nn.Linear(d, vocab, bias=False) if openlm else None
            frequencies = model["rotary_base"] ** (-torch.arange(0, head_dim, 2) / head_dim)
            angles = torch.outer(torch.arange(seq), frequencies)  # [seq, head_dim / 2]
            self.register_buffer("cos", angles.cos(), persistent=False)
            self.register_buffer("sin", angles.sin(), persistent=False)
            for p in self.parameters():
                if p.dim() >= 2:
                    nn.init.normal_(p, std=model.get("init_std", 0.02))

        def forward(self, tokens, targets):
            x = self.embedding(tokens)
            if self.positions is not None:
                x = x + self.positions.weight[: tokens.shape[1]]
            for block in self.blocks:
                x = block(x, self.cos, self.sin)
            return self.finish(x, targets)

        def finish(self, x, targets):  # final norm, head and loss: one region to compile
            x = self.norm_f(x)
            logits = self.head(x) if openlm else x @ self.embedding.weight.t()  # tied head
            logits = logits.float().view(-1, vocab)
            loss = F.cross_entropy(logits, targets.reshape(-1))
            if model["z_loss"] > 0:
                loss = loss + model["z_loss"] * torch.logsumexp(logits, dim=-1).pow(2).mean()
            return loss

    return Transformer()


def run_peer(spec: dict) -> dict:
    import torch

    model, device, precision = spec["model"], spec["device"], spec["precision"]
    # fp32 as tessera computes it: no TF32 anywhere.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    net = build_peer(model).to(device)
    decay = [p for p in net.parameters() if p.dim() >= 2]
    other = [p for p in net.parameters() if p.dim() < 2]
    fused = {"fused": True} if device == "cuda" else {}  # torch 1.x on a CPU has no fused AdamW
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": other, "weight_decay": 0.0}],
                                  lr=LR, betas=BETAS, eps=EPS, **fused)
    compiled = spec["compile"] and hasattr(torch, "compile")
    if compiled:  # regional: the blocks share one compiled graph, so compiling costs one block
        # A region dynamo cannot compile runs eagerly rather than failing the measurement; the
        # count of compiled graphs in the result shows what happened (2 when all went well).
        torch._dynamo.config.suppress_errors = True
        for block in net.blocks:
            block.compile()
        net.finish = torch.compile(net.finish)
    batch, seq = model["micro_batch"], model["seq_len"]

    def step():
        tokens = torch.randint(0, model["vocab_size"], (batch, seq + 1), device=device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = net(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        optimizer.step()
        return loss

    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    start = time.perf_counter()
    for _ in range(spec["warmup"]):
        loss = step()
    synchronize()
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(spec["steps"]):
        loss = step()
    synchronize()
    seconds = time.perf_counter() - start
    memory = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] if compiled else None
    return {"tokens_per_s": batch * seq * spec["steps"] / seconds, "warmup_s": warmup_s,
            "loss": float(loss), "compiled": compiled, "compiled_graphs": graphs,
            "peak_memory_gib": memory, "torch": torch.__version__}


def pytorch(model: dict, precision: str, args, timeout: float) -> dict:
    spec = {"model": model, "precision": precision, "device": args.device,
            "compile": not args.no_compile, "warmup": WARMUP_STEPS, "steps": args.steps}
    command = [sys.executable, os.path.abspath(__file__), "--peer", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"status": "failed (exit status %d)" % done.returncode, "log": done.stderr[-2000:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), status="ok")


# ---- tessera -----------------------------------------------------------------------------


def tessera_command(args, model: dict, precision: str | None, run_dir: str) -> list[str]:
    settings = ["train.steps=100000", "train.warmup_steps=1", "eval.every=0", "log.every=1",
                "log.progress=plain", 'data.source="synthetic"', 'data.tokenizer="byte"',
                'train.backend="%s"' % args.device, 'run.dir="%s"' % run_dir,
                "train.micro_batch=%d" % model["micro_batch"],
                "train.global_batch=%d" % model["micro_batch"],
                'train.recompute="%s"' % model["recompute"]]
    if precision is not None:
        settings.append('train.precision="%s"' % precision)
    command = [args.tessera, "train", os.path.join(args.configs, model["name"] + ".toml")]
    for setting in settings:
        command += ["--set", setting]
    return command


def watch_tessera(command: list[str], run_dir: str, wanted: int, timeout: float) -> tuple:
    """Runs tessera until metrics.jsonl holds `wanted` train records, then kills it (the run
    would otherwise go on, and end with a checkpoint). Returns (exit status or None, records,
    output tail)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    log = tempfile.TemporaryFile(mode="w+")
    # Its own process group, for one kill of all it started; the orted that a singleton MPI_Init
    # forks (in a session of its own) ends when the pipe to tessera closes.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    metrics, deadline, records = os.path.join(run_dir, "metrics.jsonl"), time.monotonic() + timeout, []
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        if os.path.exists(metrics):
            with open(metrics) as file:
                lines = file.read().split("\n")[:-1]  # the last one may be half written
            records = [json.loads(line) for line in lines if line.strip()]
            if sum(r.get("kind") == "train" for r in records) >= wanted:
                break
    status = process.poll()
    if status is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.seek(0)
    return status, records, log.read()[-3000:]


def tessera(model: dict, precision: str, args, timeout: float) -> dict:
    """One tessera run; fp32 falls back to leaving the key out for a binary that predates
    train.precision (fp32 is then what it computes)."""
    wanted = WARMUP_STEPS + args.steps
    for key in ([precision, None] if precision == "fp32" else [precision]):
        with tempfile.TemporaryDirectory() as run_dir:
            command = tessera_command(args, model, key, run_dir)
            status, records, output = watch_tessera(command, run_dir, wanted, timeout)
        refused_key = status == USAGE_EXIT and "train.precision" in output
        if not refused_key:
            break
    if status == USAGE_EXIT:  # tessera's one-line reason, e.g. a precision it lacks
        error = next((line for line in output.splitlines() if "error:" in line), "?")[:200]
        return {"status": ("refused: " if refused_key else "failed (exit status 2): ") + error,
                "log": output}
    train = [r for r in records if r.get("kind") == "train"]
    if len(train) < wanted:
        return {"status": "failed (exit status %s, %d of %d steps)" % (status, len(train), wanted),
                "log": output}
    run = next((r for r in records if r.get("kind") == "run"), {})
    first, last = train[WARMUP_STEPS - 1], train[wanted - 1]
    tokens = model["micro_batch"] * model["seq_len"] * (wanted - WARMUP_STEPS)
    return {"status": "ok", "tokens_per_s": tokens / (last["elapsed_s"] - first["elapsed_s"]),
            "warmup_s": first["elapsed_s"], "loss": last["loss"],
            "tessera_flops_per_token": run.get("flops_per_token"),
            "peak_memory_gib": (last["peak_buffer_bytes"] / 2**30 if "peak_buffer_bytes" in last
                                else None),
            "precision_set": key is not None}


# ---- the driver --------------------------------------------------------------------------


RUNNERS = {"tessera": tessera, "pytorch": pytorch}


def measure(side: str, model: dict, precision: str, args, deadline: float) -> dict:
    """One run of one side, stopped at the budget's end."""
    started = time.monotonic()
    try:
        result = RUNNERS[side](model, precision, args, deadline - started)
    except subprocess.TimeoutExpired:
        result = {"status": "timed out at the budget's end"}
    result["wall_s"] = time.monotonic() - started
    return result


def summarise(runs: list[dict]) -> dict:
    """One side of a row from its repeats: the median tokens/s and its range when every run
    worked, else the first failure."""
    failed = next((run for run in runs if run["status"] != "ok"), None)
    if failed is not None or not runs:
        return dict(failed or {"status": "not run"}, runs=runs)
    speeds = sorted(run["tokens_per_s"] for run in runs)
    middle = len(speeds) // 2
    median = speeds[middle] if len(speeds) % 2 else (speeds[middle - 1] + speeds[middle]) / 2
    memory = [run["peak_memory_gib"] for run in runs if run.get("peak_memory_gib") is not None]
    return {"status": "ok", "tokens_per_s": median, "tokens_per_s_min": speeds[0],
            "tokens_per_s_max": speeds[-1], "peak_memory_gib": max(memory) if memory else None,
            "runs": runs}


def compare(model: dict, precision: str, args, deadline: float, peaks: dict) -> dict:
    """One row of the table: tessera, then PyTorch, on one model and precision, --repeats times."""
    row = {"model": model["name"], "precision": precision, "micro_batch": model["micro_batch"],
           "seq_len": model["seq_len"], "flops_per_token": flops_per_token(model)}
    needed = sum(EXPECTED_S.get((model["name"], side), DEFAULT_EXPECTED_S) for side in RUNNERS)
    runs = {side: [] for side in RUNNERS}
    for repeat in range(args.repeats):
        # A comparison needs both sides: start a pair only when both are expected to fit.
        left = deadline - time.monotonic()
        if left < needed:
            if repeat == 0:
                for side in RUNNERS:
                    runs[side].append({"status": "skipped: %.0f s left of the budget, the pair "
                                                 "needs ~%d s" % (left, needed)})
            break
        for side in RUNNERS:
            if side == "pytorch" and runs["tessera"][-1]["status"].startswith("refused"):
                result = {"status": "skipped: nothing to compare with"}
            else:
                result = measure(side, model, precision, args, deadline)
            runs[side].append(result)
            print("%-10s %-4s %-7s %d %s" % (model["name"], precision, side, repeat + 1, json.dumps(
                {k: v for k, v in result.items() if k != "log"})), flush=True)
            if "log" in result:
                print(result["log"], flush=True)
        if any(runs[side][-1]["status"] != "ok" for side in RUNNERS):
            break  # a refusal or failure does not change on a repeat
    for side in RUNNERS:
        result = summarise(runs[side])
        if result["status"] == "ok" and peaks:
            result["mfu"] = 100 * row["flops_per_token"] * result["tokens_per_s"] / (
                peaks[precision] * 1e12)
        row[side] = result
    return row


def markdown(report: dict) -> str:
    lines = ["# tessera vs PyTorch on %s" % report["gpu"], "",
             "Peaks used for MFU: %s. FLOPs per token: %s. %d timed steps after %d warm-up "
             "steps; up to %d runs of each side, tessera and PyTorch alternating: the median "
             "tokens/s [lowest - highest] and the median's MFU; peak memory in GiB." %
             (report["peaks_used"], report["flops_formula"], report["steps"], WARMUP_STEPS,
              report["repeats"]), "",
             "| model | precision | micro-batch x seq | tessera tok/s | MFU | GiB | PyTorch tok/s "
             "| MFU | GiB | tessera / PyTorch |", "|---|---|---|---|---|---|---|---|---|---|"]

    def cell(result, key, fmt):  # the value, else (tokens/s column only) why there is none
        if result.get("status") != "ok":
            return result.get("status", "not run") if key == "tokens_per_s" else "-"
        return fmt % result[key] if result.get(key) is not None else "-"

    def speed(result):  # median [range] over the runs
        if result.get("status") != "ok":
            return cell(result, "tokens_per_s", "")
        return "%.0f [%.0f - %.0f] (%d)" % (result["tokens_per_s"], result["tokens_per_s_min"],
                                            result["tokens_per_s_max"], len(result["runs"]))

    for row in report["results"]:
        t, p = row["tessera"], row["pytorch"]
        ratio = ("%.2f" % (t["tokens_per_s"] / p["tokens_per_s"])
                 if t.get("status") == "ok" and p.get("status") == "ok" else "-")
        lines.append("| %s | %s | %d x %d | %s | %s | %s | %s | %s | %s | %s |" % (
            row["model"], row["precision"], row["micro_batch"], row["seq_len"], speed(t),
            cell(t, "mfu", "%.1f%%"), cell(t, "peak_memory_gib", "%.1f"), speed(p),
            cell(p, "mfu", "%.1f%%"), cell(p, "peak_memory_gib", "%.1f"), ratio))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tessera")
    parser.add_argument("--configs", default="configs")
    parser.add_argument("--out", default=".")
    parser.add_argument("--models", default="gpt2-124m,openlm-1b")
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per row")
    parser.add_argument("--budget-s", type=float, default=230.0)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--no-compile", action="store_true", help="the peer without torch.compile")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer is not None:
        print(json.dumps(run_peer(json.loads(args.peer))))
        return 0
    if not args.tessera:
        parser.error("--tessera is required")

    deadline = time.monotonic() + args.budget_s
    gpu, peaks = gpu_peaks()
    report = {"gpu": gpu, "steps": args.steps, "warmup_steps": WARMUP_STEPS,
              "peaks_tflops": peaks, "budget_s": args.budget_s, "repeats": args.repeats,
              "peaks_used": ("bf16 %.0f TFLOP/s dense (tensor cores), fp32 %.0f TFLOP/s (no "
                             "tensor cores, TF32 off)" % (peaks["bf16"], peaks["fp32"])
                             if peaks else "none known for this card (no MFU)"),
              "flops_formula": "6 (L (4 d^2 + m d f) + V d) + 12 L T d", "results": []}
    print("gpu: %s; peaks %s; budget %.0f s" % (gpu, peaks or "unknown", args.budget_s), flush=True)
    for name in args.models.split(","):
        model = load_model(args.configs, name)
        for precision in args.precisions.split(","):
            report["results"].append(compare(model, precision, args, deadline, peaks))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench_gpu.json"), "w") as file:
        json.dump(report, file, indent=1)
    table = markdown(report)
    with open(os.path.join(args.out, "bench_gpu.md"), "w") as file:
        file.write(table)
    print(table)
    # Skips (budget) and refusals (a precision this binary lacks) are reported, not failures.
    failed = [row[side]["status"] for row in report["results"] for side in RUNNERS
              if row[side]["status"].startswith(("failed", "timed out"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
