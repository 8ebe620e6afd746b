"""tessera next to PyTorch on the same training step, measured in the same run, alternating.

Both sides train the bench-cpu model (GPT-2 family: learned positions, pre-norm LayerNorm with
bias, biases on every linear, GELU (tanh) MLP of 4 d_model, tied embedding head; 6 layers,
d_model 384, 6 heads, seq 256, vocab 8192, batch 8, fp32) with AdamW (betas 0.9 / 0.95,
eps 1e-8, weight decay 0.1 on matrices) and gradient clipping at 1.0, on random tokens. The
PyTorch peer is written here from the model's description (nanoGPT style), not from tessera.

Each repetition runs tessera (bench_train_step) and then the peer, each in a fresh process for
the same number of steps (first step excluded on both sides), so machine load hits both alike.
The peer gets its best settings on this machine: torch.set_num_threads(cores),
OPENBLAS_CORETYPE=SKYLAKEX so OpenBLAS takes its AVX-512 kernels, and the fastest of the
PEER_VARIANTS (--tune-peer measures them all first).

Prints, per repetition and as medians: tokens/s of both, their ratio (with a bootstrap interval
of the median of the per-repetition ratios), model GFLOP/s
(6 N + attention per token, PaLM's count) and the fraction of the sgemm peak of tessera's GEMM
library (dnnl_sgemm 2048^3, measured inside each tessera run); the per-kernel breakdown of a
tessera step; the ceiling that step's linear-layer GEMMs set (its tok/s were all other work
free); and, with --scaling, tessera at 1 thread, 2 threads and 2 MPI ranks x 1 thread.

tessera runs as one data-parallel rank per core with one thread each (--layout ranks, the
default: fastest here over whole runs, and the least disturbed by other work) or as one rank
with a thread per core (--layout threads, the peer's own layout). Its OpenMP threads keep
libgomp's default wait (spin, then sleep), right for a node a batch job has to itself;
--tessera-wait passive makes them sleep at once, which wins on a machine shared with other work
(doc/performance.md).

With --precision bf16 both sides compute in bf16 mixed precision: tessera with train.precision =
"bf16" (its linear layers on oneDNN's AMX / AVX512-BF16 kernels), the peer under
torch.autocast("cpu", dtype=torch.bfloat16), which PyTorch 1.13 runs through oneDNN as well.

usage: bench_vs_pytorch.py [--build DIR] [--reps N] [--steps N] [--layout ranks|threads]
                           [--tessera-wait default|passive] [--scaling] [--tune-peer N]
                           [--precision fp32|bf16]
       bench_vs_pytorch.py --peer STEPS   (one peer run; prints one JSON line)
       bench_vs_pytorch.py --pool FILE...  (the paired ratios of saved runs, pooled)

--pool reads the per-repetition lines of earlier outputs of this script (doc/measurements/) and
prints the median of all their paired ratios with its bootstrap interval: one run of 9 pairs on
a noisy host cannot tell 2.4 from 2.6, several runs of the same code together can.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time

# The model and the step, shared by both sides (bench-cpu.toml).
LAYERS, D_MODEL, HEADS, SEQ, VOCAB, BATCH = 6, 384, 6, 256, 8192, 8
LR, BETAS, EPS, WEIGHT_DECAY, CLIP = 1e-3, (0.9, 0.95), 1e-8, 0.1, 1.0

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-torch
ROOT_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
# The peer's environment: OpenBLAS reads OPENBLAS_CORETYPE when it loads. --tune-peer measures
# each variant (alternating) and the run then uses the fastest; --peer-variant picks one.
# OMP_WAIT_POLICY for tessera's side: "" keeps libgomp's default (spin a while, then sleep).
WAIT_POLICIES = {"default": "", "passive": "PASSIVE"}
PEER_BASE = {"OPENBLAS_CORETYPE": "SKYLAKEX"}
PEER_VARIANTS = {
    "default": {},
    "omp-passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "avx512-aten": {"ATEN_CPU_CAPABILITY": "avx512"},
    "avx512-aten+omp-passive": {"ATEN_CPU_CAPABILITY": "avx512", "OMP_WAIT_POLICY": "PASSIVE"},
    "blas-1-thread": {"OPENBLAS_NUM_THREADS": "1"},
}


def model_flops_per_token() -> float:
    """6 x (parameters in matrix products, the tied head counted once) + 12 L d seq."""
    per_layer = 4 * D_MODEL * D_MODEL + 2 * D_MODEL * 4 * D_MODEL
    return 6.0 * (LAYERS * per_layer + VOCAB * D_MODEL) + 12.0 * LAYERS * D_MODEL * SEQ


# ---- the PyTorch peer ----------------------------------------------------------------------


def run_peer(steps: int, threads: int, precision: str) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    head_dim = D_MODEL // HEADS

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(D_MODEL)
            self.c_attn = nn.Linear(D_MODEL, 3 * D_MODEL)
            self.attn_proj = nn.Linear(D_MODEL, D_MODEL)
            self.ln_2 = nn.LayerNorm(D_MODEL)
            self.c_fc = nn.Linear(D_MODEL, 4 * D_MODEL)
            self.mlp_proj = nn.Linear(4 * D_MODEL, D_MODEL)
            self.register_buffer("future", torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), 1))

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(D_MODEL, dim=2)
            q, k, v = (z.view(b, t, HEADS, head_dim).transpose(1, 2) for z in (q, k, v))
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(head_dim))
            probs = scores.masked_fill(self.future[:t, :t], float("-inf")).softmax(dim=-1)
            x = x + self.attn_proj((probs @ v).transpose(1, 2).reshape(b, t, d))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, D_MODEL)
            self.wpe = nn.Embedding(SEQ, D_MODEL)
            self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
            self.ln_f = nn.LayerNorm(D_MODEL)
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    nn.init.normal_(p, std=0.02)

        def forward(self, tokens, targets):
            x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
            for block in self.blocks:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.t()  # tied head
            return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))

    torch.manual_seed(0)
    model = Gpt()
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": matrices, "weight_decay": WEIGHT_DECAY}, {"params": others, "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=EPS, foreach=True)
    def autocast():
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    step_seconds = []
    for _ in range(steps):
        tokens = torch.randint(0, VOCAB, (BATCH, SEQ))
        targets = torch.randint(0, VOCAB, (BATCH, SEQ))
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        step_seconds.append(time.perf_counter() - start)
    measured = step_seconds[1:]  # the first step allocates
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    peak = 0.0
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        peak = max(peak, 2.0 * n**3 / (time.perf_counter() - start) / 1e9)
    return {"tokens_per_s": BATCH * SEQ * len(measured) / sum(measured),
            "threads": torch.get_num_threads(), "mm_peak_gflops": peak,
            "torch": torch.__version__, "loss": float(loss)}


# ---- the driver ----------------------------------------------------------------------------


def run_json(command: list[str], env: dict) -> dict:
    full = dict(os.environ, **env)
    if "OMP_WAIT_POLICY" not in env:
        full.pop("OMP_WAIT_POLICY", None)
    done = subprocess.run(command, env=full, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tessera(build: str, steps: int, threads: int, ranks: int = 1, breakdown: bool = False,
            wait_policy: str = "", precision: str = "fp32") -> dict:
    """One bench_train_step run; with ranks > 1, data parallel with the same global batch."""
    command = [os.path.join(build, "bench", "bench_train_step"), "--steps", str(steps), "--json",
               "--set", f'train.precision="{precision}"']
    if breakdown:
        command.append("--breakdown")
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--bind-to", "core"] + command + [
            "--set", f"parallel.dp={ranks}", "--set", f"train.micro_batch={BATCH // ranks}"]
    env = dict(ROOT_ENV, OMP_NUM_THREADS=str(threads))
    if wait_policy:  # empty: libgomp's default (spin a while, then sleep)
        env["OMP_WAIT_POLICY"] = wait_policy
    else:
        env.pop("OMP_WAIT_POLICY", None)
    return run_json(command, env)


def peer(steps: int, threads: int, variant: str, precision: str = "fp32") -> dict:
    command = [SYSTEM_PYTHON, os.path.abspath(__file__), "--peer", str(steps),
               "--peer-threads", str(threads), "--precision", precision]
    return run_json(command, dict(PEER_BASE, **PEER_VARIANTS[variant]))


def tune_peer(steps: int, threads: int, reps: int) -> str:
    """Runs every peer variant `reps` times, interleaved; returns the fastest by median."""
    results = {variant: [] for variant in PEER_VARIANTS}
    for _ in range(reps):
        for variant in PEER_VARIANTS:
            results[variant].append(peer(steps, threads, variant)["tokens_per_s"])
    print("PyTorch peer settings (tok/s, median of interleaved runs):")
    for variant, values in results.items():
        print(f"  {variant:26s} {statistics.median(values):7.0f}  "
              f"({', '.join(f'{v:.0f}' for v in values)})")
    best = max(results, key=lambda v: statistics.median(results[v]))
    print(f"  -> the peer runs as '{best}'\n")
    return best


def bootstrap_interval(values: list[float], level: float = 0.9,
                       resamples: int = 4000) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of `values` (a fixed seed: the same numbers
    give the same interval). On a noisy host it says how far the median itself may be off."""
    rng = random.Random(12345)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    return medians[int(tail * resamples)], medians[int((1.0 - tail) * resamples) - 1]


TARGET_RATIO = 2.5  # the CPU-speed issue's target: tessera's tokens/s over the peer's


def pooled_ratios(paths: list[str]) -> list[float]:
    """tessera / peer tokens/s of every repetition line ("rep tessera peer ratio % ...") in the
    saved outputs `paths`, recomputed from the two tokens/s columns."""
    ratios = []
    for path in paths:
        with open(path, encoding="utf-8") as output:
            for line in output:
                fields = line.split()
                if len(fields) == 7 and fields[0].isdigit() and fields[4].endswith("%"):
                    ratios.append(float(fields[1]) / float(fields[2]))
    return ratios


def print_pooled(paths: list[str]) -> int:
    ratios = pooled_ratios(paths)
    if not ratios:
        print(f"bench_vs_pytorch: no repetition lines in {' '.join(paths)}; pass outputs of this "
              "script", file=sys.stderr)
        return 2
    low, high = bootstrap_interval(ratios)
    reached = sum(ratio >= TARGET_RATIO for ratio in ratios)
    print(f"{len(ratios)} pairs from {len(paths)} run(s): median of paired ratios "
          f"{statistics.median(ratios):.2f}, 90 % bootstrap interval {low:.2f}-{high:.2f}; "
          f"{reached} of {len(ratios)} pairs at {TARGET_RATIO} or more")
    return 0


def print_breakdown(result: dict) -> None:
    step = result["breakdown_step_s"]
    print(f"\nper-kernel time of one tessera step (profiled, {1e3 * step:.0f} ms wall per step)")
    print(f"  {'kernel':34s} {'ms/step':>8s} {'share':>7s} {'calls':>6s}")
    in_kernels = 0.0
    for name, seconds, calls in result["breakdown"]:
        in_kernels += seconds
        print(f"  {name:34s} {1e3 * seconds:8.2f} {100 * seconds / step:6.1f}% {calls:6d}")
    outside = step - in_kernels
    print(f"  {'(outside kernels)':34s} {1e3 * outside:8.2f} {100 * outside / step:6.1f}%")


def print_ceiling(result: dict, peer_tokens_per_s: float) -> None:
    """The most any work outside the linear layers' GEMMs could still give: their time alone.

    The linear layers run at the GEMM library's rate for their shapes (bench_step_gemms); a step
    with attention, norms, the loss, AdamW and everything else taking no time at all would run
    at BATCH * SEQ tokens per that time. Beyond it only a faster GEMM helps. (The MLP's first
    layer is timed with the bias + GELU pass fused to it, about 1 % of a step, so the ceiling
    is a little low.)"""
    linear = sum(seconds for name, seconds, _ in result["breakdown"] if name.startswith("linear_"))
    ceiling = BATCH * SEQ / linear
    print(f"\nceiling  the linear layers' GEMMs alone take {1e3 * linear:.0f} of "
          f"{1e3 * result['breakdown_step_s']:.0f} ms per profiled step; with all else free, "
          f"tessera would reach {ceiling:.0f} tok/s = {ceiling / peer_tokens_per_s:.2f}x the "
          f"peer's median")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build/perf")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--layout", choices=["threads", "ranks"], default="ranks",
                        help="tessera's side of the comparison: a data-parallel rank per core "
                        "with one thread each (default), or one rank with a thread per core")
    parser.add_argument("--tessera-wait", choices=sorted(WAIT_POLICIES), default="default",
                        help="OMP_WAIT_POLICY of tessera's threads: libgomp's default, or PASSIVE")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="both sides in fp32, or both in bf16 mixed precision")
    parser.add_argument("--peer", type=int, metavar="STEPS", help=argparse.SUPPRESS)
    parser.add_argument("--peer-threads", type=int, default=os.cpu_count())
    parser.add_argument("--peer-variant", choices=sorted(PEER_VARIANTS), default="default")
    parser.add_argument("--tune-peer", type=int, default=0, metavar="REPS",
                        help="first measure every peer variant REPS times and use the fastest")
    parser.add_argument("--pool", nargs="+", metavar="FILE",
                        help="pool the paired ratios of saved outputs of this script; runs nothing")
    args = parser.parse_args()
    if args.pool:
        return print_pooled(args.pool)
    if args.peer is not None:
        print(json.dumps(run_peer(args.peer, args.peer_threads, args.precision)))
        return 0

    flops = model_flops_per_token()
    variant = args.peer_variant
    if args.tune_peer > 0:
        variant = tune_peer(args.steps, args.peer_threads, args.tune_peer)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start; "
          f"{args.reps} alternating repetitions of {args.steps} steps (first excluded)")
    print(f"{'rep':>3s} {'tessera tok/s':>14s} {'peer tok/s':>11s} {'ratio':>6s} "
          f"{'tessera % peak':>15s} {'sgemm peak':>11s} {'load':>5s}")
    ours, theirs, fractions, peaks = [], [], [], []
    threads, ranks = (args.threads, 1) if args.layout == "threads" else (1, args.threads)
    wait = WAIT_POLICIES[args.tessera_wait]
    print(f"tessera runs as {ranks} rank(s) x {threads} thread(s), {args.tessera_wait} OpenMP wait; "
          f"both sides in {args.precision}")
    for rep in range(args.reps):
        last = tessera(args.build, args.steps, threads, ranks, wait_policy=wait,
                       precision=args.precision)
        other = peer(args.steps, args.peer_threads, variant, args.precision)
        fraction = last["tokens_per_s"] * flops / 1e9 / last["sgemm_peak_gflops"]
        ours.append(last["tokens_per_s"])
        theirs.append(other["tokens_per_s"])
        fractions.append(fraction)
        peaks.append(last["sgemm_peak_gflops"])
        print(f"{rep:3d} {ours[-1]:14.0f} {theirs[-1]:11.0f} {ours[-1] / theirs[-1]:6.2f} "
              f"{100 * fraction:14.1f}% {peaks[-1]:11.1f} {os.getloadavg()[0]:5.2f}", flush=True)
    median_ours, median_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"\nmedian   tessera {median_ours:.0f} tok/s ({median_ours * flops / 1e9:.1f} GFLOP/s)"
          f"   PyTorch {other['torch']} {median_theirs:.0f} tok/s "
          f"({median_theirs * flops / 1e9:.1f} GFLOP/s, {other['threads']} threads, '{variant}', "
          f"OpenBLAS mm 2048^3 {other['mm_peak_gflops']:.0f} GFLOP/s)")
    ratios = [o / t for o, t in zip(ours, theirs)]
    low, high = bootstrap_interval(ratios)
    print(f"ratio    {median_ours / median_theirs:.2f} (median of ratios "
          f"{statistics.median(ratios):.2f}, 90 % bootstrap interval {low:.2f}-{high:.2f})")
    print(f"tessera  {100 * statistics.median(fractions):.1f}% of the dnnl_sgemm peak "
          f"(median {statistics.median(peaks):.1f} GFLOP/s, best {max(peaks):.1f}); "
          f"PyTorch {100 * median_theirs * flops / 1e9 / statistics.median(peaks):.1f}%")
    profiled = tessera(args.build, args.steps, args.threads, breakdown=True, wait_policy=wait,
                       precision=args.precision)
    print_breakdown(profiled)
    print_ceiling(profiled, median_theirs)
    if args.scaling:
        print("\nscaling of the same step (tessera, alternating, median tok/s):")
        layouts = [("1 rank x 1 thread", 1, 1, ""),
                   ("1 rank x 2 threads", 2, 1, ""),
                   ("1 rank x 2 threads, passive wait", 2, 1, "PASSIVE"),
                   ("2 ranks x 1 thread (dp=2)", 1, 2, "")]
        results = {label: [] for label, _, _, _ in layouts}
        for _ in range(max(1, args.reps // 2)):
            for label, threads, ranks, policy in layouts:
                result = tessera(args.build, args.steps, threads, ranks, wait_policy=policy,
                                 precision=args.precision)
                results[label].append(result["tokens_per_s"])
        for label, values in results.items():
            print(f"  {label:28s} {statistics.median(values):8.0f}   "
                  f"({', '.join(f'{v:.0f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
