#!/usr/bin/env bash
# Builds tessera and the CUDA test binaries for a GPU machine and packs them, with what they need
# that such a machine lacks, into .gpu-carry/bundle.tar.xz (.gpu-carry/ is git-ignored through
# .git/info/exclude), for bench/gpu/run_device_checks.sh to run there.
#
# The binaries are built without -march=native (the Release flags of tessera_options) so they run
# on any x86-64 host. They need GLIBCXX_3.4.29 and glibc >= 2.36 (Debian 12's libevent, which Open
# MPI needs; the lent machines run Ubuntu 24.04, glibc 2.39). libstdc++ and libgcc_s come from the
# GPU machine, as do glibc and the CUDA libraries (cudart, cuBLAS, cuDNN, NCCL).
#
# The GPU machine has no MPI, and tessera calls MPI_Init, so Debian's Open MPI 4.1 runtime travels
# along: its libraries, the orted daemon and mpirun, the plugins whose libraries are packed too,
# the help texts, and an openmpi-mca-params.conf that picks the packed transports. bin/ holds one
# wrapper per program that sources env.sh (bench/gpu/carry_env.sh) to relocate all of it:
#   bundle/bin/{tessera,test_cuda_backend,test_cuda_mpi,mpirun}   wrappers
#   bundle/libexec/                 the stripped binaries
#   bundle/lib/                     Debian libraries (HDF5, oneDNN, libmpi, hwloc, libcurl, ...)
#   bundle/openmpi/{bin,lib/openmpi3,share/openmpi,etc}   OPAL_PREFIX
#   bundle/pmix/{lib/pmix,share/pmix}                    PMIX_PREFIX
# The configs travel with the working tree.
#
# Usage (from anywhere): bench/gpu/prepare_carry.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build/cuda-portable"
carry="$root/.gpu-carry"
debian_ompi=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
debian_pmix=/usr/lib/x86_64-linux-gnu/pmix2

cmake -S "$root" -B "$build" -G Ninja -DTESSERA_CUDA=ON \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O3 -DNDEBUG" \
  -DCMAKE_CUDA_FLAGS_RELWITHDEBINFO="-O3 -DNDEBUG" \
  -DCMAKE_EXE_LINKER_FLAGS="" >/dev/null
ninja -C "$build" tessera test_cuda_backend test_cuda_mpi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bundle="$stage/bundle"
mkdir -p "$bundle"/{bin,libexec,lib} "$bundle"/openmpi/{bin,lib/openmpi3,share/openmpi,etc} \
  "$bundle"/pmix/{lib/pmix,share/pmix}

wrap() {  # wrap NAME TARGET: bin/NAME runs TARGET (relative to the bundle) set up by env.sh
  cat >"$bundle/bin/$1" <<EOF
#!/bin/sh
# Runs $2 with the packed libraries and Open MPI (env.sh).
bundle=\$(cd "\$(dirname "\$0")/.." && pwd)
. "\$bundle/env.sh"
exec "\$bundle/$2" "\$@"
EOF
  chmod +x "$bundle/bin/$1"
}
for binary in tessera tests/backend_cuda/test_cuda_backend tests/backend_cuda/test_cuda_mpi; do
  name=$(basename "$binary")
  strip -o "$bundle/libexec/$name" "$build/$binary"
  wrap "$name" "libexec/$name"
done
cp "$root/bench/gpu/carry_env.sh" "$bundle/env.sh"

# Open MPI: daemon and launcher, help texts, and the plugins that need no network library
# the GPU machine lacks (UCX, libfabric, verbs, PSM) and are not OpenSHMEM's. A plugin that is
# not there is not tried, so the packed ones load without warnings.
cp /usr/bin/orted /usr/bin/orterun "$bundle/openmpi/bin/"
ln -s orterun "$bundle/openmpi/bin/mpirun"
wrap mpirun openmpi/bin/mpirun
cp /usr/share/openmpi/*.txt "$bundle/openmpi/share/openmpi/"
for plugin in "$debian_ompi"/*.so; do
  needs=$(ldd "$plugin")  # not piped into grep -q: its early exit would fail the pipe (pipefail)
  grep -qE 'lib(uc[pstm]|fabric|ibverbs|rdmacm|psm|nl-|oshmem)' <<<"$needs" ||
    cp "$plugin" "$bundle/openmpi/lib/openmpi3/"
done
cat >"$bundle/openmpi/etc/openmpi-mca-params.conf" <<'EOF'
# Packed by bench/gpu/prepare_carry.sh. One node, no fabric: shared memory and TCP. vader's
# single-copy (CMA) needs ptrace rights between ranks that VMs and containers may deny.
btl = self,vader,tcp
pml = ob1
btl_vader_single_copy_mechanism = none
EOF
cp "$debian_pmix"/lib/pmix/*.so "$bundle/pmix/lib/pmix/"
cp "$debian_pmix"/share/pmix/*.txt "$bundle/pmix/share/pmix/"

# Every library ldd resolves for the packed binaries and plugins, except glibc's own and CUDA's
# (the GPU machine brings both; a Debian glibc library next to another glibc breaks on its private
# symbols), and libstdc++ / libgcc_s (Debian's need glibc 2.36; the GPU image's are new enough).
find "$bundle/libexec" "$bundle/openmpi" "$bundle/pmix" -type f \( -perm -u+x -o -name '*.so' \) -print0 |
  xargs -0 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libdl.so.* | librt.so.* | libpthread.so.* | ld-linux*) ;;
    libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*) ;;
    libstdc++.so.* | libgcc_s.so.*) ;;
    libcuda*.so.* | libcublas*.so.* | libcudnn*.so.* | libnccl.so.* | libnvidia*) ;;
    *) cp -L "$lib" "$bundle/lib/" ;;
  esac
done

rm -rf "$carry"
mkdir -p "$carry"
XZ_OPT=${XZ_OPT:--T0} tar -C "$bundle" -cJf "$carry/bundle.tar.xz" .
echo "newest glibc / libstdc++ symbol versions the packed files need:"
find "$bundle/libexec" "$bundle/lib" "$bundle/openmpi" "$bundle/pmix" -type f -print0 |
  xargs -0 objdump -T 2>/dev/null | grep -oE 'GLIBC_[0-9.]+|GLIBCXX_[0-9.]+|CXXABI_[0-9.]+' |
  sort -uV | awk -F_ '{last[$1] = $0} END {for (k in last) print "  " last[k]}' || true
echo "packed into $carry: $(tar -tJf "$carry/bundle.tar.xz" | wc -l) entries," \
  "$(du -sh "$bundle" | cut -f1) unpacked"
du -sh "$carry"
