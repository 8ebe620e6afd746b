#!/usr/bin/env bash
# Builds the CUDA conformance test for a GPU machine and packs what it needs into .gpu-carry/
# (git-ignored through .git/info/exclude), for bench/gpu/run_device_checks.sh to run there.
#
# The binary is built without -march=native (the Release flags of tessera_options) so it runs on
# any x86-64 host. It needs glibc >= 2.34 and GLIBCXX_3.4.29 (Ubuntu 22.04 or later); libstdc++ is
# not linked statically, since Debian's static libstdc++ and libgcc would raise that to glibc 2.36.
# The Debian libraries it loads that a GPU image lacks (oneDNN, libgomp, the OpenCL loader) travel
# along, xz-compressed; the CUDA libraries (cudart, cuBLAS, cuBLASLt) come from the GPU machine.
#
# Usage (from anywhere): bench/gpu/prepare_carry.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build/cuda-portable"
carry="$root/.gpu-carry"

cmake -S "$root" -B "$build" -G Ninja -DTESSERA_CUDA=ON \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O3 -DNDEBUG" \
  -DCMAKE_CUDA_FLAGS_RELWITHDEBINFO="-O3 -DNDEBUG" \
  -DCMAKE_EXE_LINKER_FLAGS="" >/dev/null
ninja -C "$build" test_cuda_backend test_cuda_mpi

binary="$build/tests/backend_cuda/test_cuda_backend"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
strip -o "$stage/test_cuda_backend" "$binary"
# test_cuda_mpi (NCCL communicator, rank in the check macro) starts MPI: it runs only where the
# GPU machine has an Open MPI of its own; its libraries travel with it all the same.
strip -o "$stage/test_cuda_mpi" "$build/tests/backend_cuda/test_cuda_mpi"

# Every library ldd resolves, except glibc's own and CUDA's (the GPU machine brings both), and
# libstdc++ / libgcc_s (Debian's need glibc 2.36; the GPU image's are new enough).
ldd "$binary" "$build/tests/backend_cuda/test_cuda_mpi" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libdl.so.* | librt.so.* | libpthread.so.* | ld-linux*) ;;
    libstdc++.so.* | libgcc_s.so.*) ;;
    libcuda*.so.* | libcublas*.so.* | libnvidia*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done

rm -rf "$carry"
mkdir -p "$carry"
tar -C "$stage" -cJf "$carry/bundle.tar.xz" test_cuda_backend test_cuda_mpi lib
echo "newest glibc / libstdc++ symbol versions the binary needs:"
objdump -T "$binary" | grep -oE 'GLIBC_[0-9.]+|GLIBCXX_[0-9.]+|CXXABI_[0-9.]+' | sort -uV |
  awk -F_ '{last[$1] = $0} END {for (k in last) print "  " last[k]}'
echo "packed into $carry:"
tar -tvJf "$carry/bundle.tar.xz"
du -sh "$carry"
