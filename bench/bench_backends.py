"""The Kokkos backend next to the CPU backend on the same training step, alternating in one run.

Both train the bench-cpu model (configs/bench-cpu.toml: GPT-2 family, 6 layers, d_model 384,
seq 256, vocab 8192, batch 8, fp32) through bench_train_step, each repetition a fresh process
per backend (first step excluded), so that machine load hits both alike. Both get one core: the
Kokkos build's default execution space here is Serial (Debian's Trilinos Kokkos), so the CPU
backend runs one OpenMP thread too, and both GEMM libraries one thread (OpenBLAS under
KokkosBlas with OPENBLAS_CORETYPE=SKYLAKEX, its AVX-512 kernels; oneDNN under the CPU backend).

Prints per repetition and as medians: tokens/s of both and their ratio, then the per-kernel
time of one step of each (a profiled run of each, side by side), which says where the rest of
the gap is.

usage: bench_backends.py [--build DIR] [--reps N] [--steps N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def run_step(build: str, backend: str, steps: int, breakdown: bool) -> dict:
    """One bench_train_step process on `backend`; its JSON result."""
    command = [os.path.join(build, "bench", "bench_train_step"), "--steps", str(steps), "--json",
               "--set", f'train.backend="{backend}"']
    if breakdown:
        command.append("--breakdown")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               OPENBLAS_CORETYPE="SKYLAKEX", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build/release", help="the release build directory")
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions")
    parser.add_argument("--steps", type=int, default=8, help="steps per run (first excluded)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.build, "bench", "bench_train_step")):
        print(f"bench_backends: no {args.build}/bench/bench_train_step; build the release preset "
              "first (cmake --preset release && cmake --build --preset release)", file=sys.stderr)
        return 2

    print(f"machine: {cpu_model()}, one core per backend; bench-cpu model, fp32, "
          f"{args.steps} steps per run")
    print(f"{'rep':>3} {'cpu tok/s':>10} {'kokkos tok/s':>13} {'kokkos/cpu':>11}")
    cpu_rates, kokkos_rates, ratios = [], [], []
    for rep in range(1, args.reps + 1):
        cpu = run_step(args.build, "cpu", args.steps, False)["tokens_per_s"]
        kokkos = run_step(args.build, "kokkos", args.steps, False)["tokens_per_s"]
        cpu_rates.append(cpu)
        kokkos_rates.append(kokkos)
        ratios.append(kokkos / cpu)
        print(f"{rep:>3} {cpu:>10.0f} {kokkos:>13.0f} {kokkos / cpu:>11.3f}", flush=True)
    print(f"median {statistics.median(cpu_rates):>7.0f} {statistics.median(kokkos_rates):>13.0f} "
          f"{statistics.median(ratios):>11.3f}  (median of the paired ratios; "
          f"range {min(ratios):.3f}-{max(ratios):.3f})")

    profiles = {backend: run_step(args.build, backend, args.steps, True)
                for backend in ("cpu", "kokkos")}
    times = {backend: {name: seconds for name, seconds, _ in profile["breakdown"]}
             for backend, profile in profiles.items()}
    names = sorted(set(times["cpu"]) | set(times["kokkos"]),
                   key=lambda name: -times["kokkos"].get(name, 0.0))
    print("\nper-kernel time of one step, ms (one profiled run each):")
    print(f"  {'kernel':<32} {'cpu':>9} {'kokkos':>9} {'kokkos/cpu':>11}")
    for name in names:
        cpu, kokkos = times["cpu"].get(name, 0.0), times["kokkos"].get(name, 0.0)
        ratio = f"{kokkos / cpu:>11.2f}" if cpu > 0 else f"{'-':>11}"
        print(f"  {name:<32} {1e3 * cpu:>9.2f} {1e3 * kokkos:>9.2f} {ratio}")
    print(f"  {'(step, wall)':<32} {1e3 * profiles['cpu']['breakdown_step_s']:>9.2f} "
          f"{1e3 * profiles['kokkos']['breakdown_step_s']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
