#!/usr/bin/env bash
# Installs the dependencies, builds tessera and runs the whole test suite with ctest. Where the
# CUDA toolkit is present (/usr/local/cuda), the CUDA backend is built too and its conformance
# tests run first (each reports "skipped: no GPU" on a machine without one), so it never
# silently stops compiling; then the fuzz harnesses run, then the release suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [ -x "$nvcc" ]; then
  cmake -S . -B build/cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DTESSERA_BUILD_BENCH=OFF >/dev/null
  cmake --build build/cuda -j "$(nproc)" --target tessera test_cuda_backend test_cuda_mpi
  ctest --test-dir build/cuda -j "$(nproc)" -R "Conformance|CudaCheck|Nccl|cuda_vs_cpu|backend_system.cuda|cli.bad_input" --output-on-failure
else
  echo "test.sh: no CUDA toolkit at $nvcc: the CUDA backend was not built"
fi

# The readers of outside input under libFuzzer with AddressSanitizer and UBSan, each for
# 25 s (tests/fuzz): only the harnesses and the libraries they read with are built.
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
ctest --preset fuzz -j "$(nproc)"

ctest --preset release -j "$(nproc)" "$@"
