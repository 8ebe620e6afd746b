#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine: run from the repository root of a copy of the
# working tree that carries .gpu-carry/ (made by bench/gpu/prepare_carry.sh). Writes
# $OUT/cuda_conformance.xml (GoogleTest) and $OUT/cuda_conformance.log; exits with the test's
# status. TESSERA_REQUIRE_GPU=1 turns "no usable GPU" into failures instead of skips. Takes well
# under a minute on an H100.
set -uo pipefail

OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
log="$OUT/cuda_conformance.log"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== device" | tee "$log"
nvidia-smi -L 2>&1 | tee -a "$log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
grep PRETTY_NAME /etc/os-release 2>&1 | tee -a "$log"
ldd --version 2>&1 | head -1 | tee -a "$log"

tar -xJf .gpu-carry/bundle.tar.xz -C "$work" || { echo "no .gpu-carry/bundle.tar.xz" | tee -a "$log"; exit 3; }

# CUDA 13 libraries of this machine: the dynamic linker's cache, the toolkit, pip's nvidia wheels
# (PyTorch's). The first directory that holds a library wins.
candidates=$( (ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13 / {print $NF}' | xargs -r -n1 dirname
  ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64
  python3 -c 'import glob, site
for p in site.getsitepackages(): print("\n".join(glob.glob(p + "/nvidia/**/lib", recursive=True)))'
) 2>/dev/null)
cuda_dirs=""
for dir in $candidates; do
  [ -e "$dir/libcublas.so.13" ] || [ -e "$dir/libcublasLt.so.13" ] || [ -e "$dir/libcudart.so.13" ] ||
    continue
  case ":$cuda_dirs:" in *":$dir:"*) ;; *) cuda_dirs="$cuda_dirs:$dir" ;; esac
done
export LD_LIBRARY_PATH="$work/lib$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== LD_LIBRARY_PATH=$LD_LIBRARY_PATH" | tee -a "$log"
ldd "$work/test_cuda_backend" 2>&1 | grep -E "cuda|cublas|dnnl|gomp|OpenCL|not found" | tee -a "$log"

echo "== conformance" | tee -a "$log"
TESSERA_REQUIRE_GPU=1 timeout 240 "$work/test_cuda_backend" --gtest_output="xml:$OUT/cuda_conformance.xml" 2>&1 |
  tee -a "$log"
status=${PIPESTATUS[0]}
echo "== test_cuda_backend exit status $status" | tee -a "$log"

# Informational: needs an MPI runtime on the GPU machine, which may have none.
echo "== NCCL communicator and check macro under MPI (test_cuda_mpi)" | tee -a "$log"
TESSERA_REQUIRE_GPU=1 timeout 120 "$work/test_cuda_mpi" --gtest_output="xml:$OUT/cuda_mpi.xml" 2>&1 |
  tee -a "$log"
echo "== test_cuda_mpi exit status ${PIPESTATUS[0]}" | tee -a "$log"
exit "$status"
