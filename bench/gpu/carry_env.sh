# Sourced (sh) by the wrappers in bin/ of the bundle that bench/gpu/prepare_carry.sh packs; packed
# into it as env.sh. Points the dynamic linker at the packed Debian libraries and the GPU machine's
# own CUDA 13 libraries, and relocates the packed Open MPI 4.1 runtime, so that tessera and the
# test binaries run where no MPI is installed. Reads $bundle: the unpacked bundle's directory.
#
# Open MPI finds its plugins, help texts and daemon through its install directories, compiled in
# as Debian's (/usr/lib/x86_64-linux-gnu/openmpi/...); OPAL_* (and PMIX_* for the PMIx library
# it loads) override them. A singleton MPI_Init (tessera without mpirun) forks $OPAL_PREFIX/bin/orted.

: "${bundle:?set bundle to the directory of the unpacked bundle before sourcing env.sh}"
ompi="$bundle/openmpi"
export OPAL_PREFIX="$ompi" OPAL_EXEC_PREFIX="$ompi"
export OPAL_BINDIR="$ompi/bin" OPAL_LIBDIR="$ompi/lib" OPAL_PKGLIBDIR="$ompi/lib/openmpi3"
export OPAL_DATADIR="$ompi/share" OPAL_DATAROOTDIR="$ompi/share" OPAL_PKGDATADIR="$ompi/share/openmpi"
# Holds openmpi-mca-params.conf: the transports picked there (self, vader, tcp) are all packed.
export OPAL_SYSCONFDIR="$ompi/etc"
export PMIX_PREFIX="$bundle/pmix" PMIX_LIBDIR="$bundle/pmix/lib"
export PMIX_PKGLIBDIR="$bundle/pmix/lib/pmix" PMIX_DATADIR="$bundle/pmix/share"
export PMIX_PKGDATADIR="$bundle/pmix/share/pmix"
export PATH="$ompi/bin:$PATH"
# The lent GPU machines run commands as root, which mpirun refuses unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# CUDA 13 libraries of this machine (cudart, cuBLAS, cuDNN, NCCL): the dynamic linker's cache, the
# toolkit, pip's nvidia wheels (PyTorch's). Each directory that holds one is searched, in this order.
if [ -z "${CARRY_CUDA_DIRS+set}" ]; then
  CARRY_CUDA_DIRS=""
  for dir in $( (ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13 / {print $NF}' | xargs -r -n1 dirname
    ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64
    python3 -c 'import glob, site
for p in site.getsitepackages(): print("\n".join(glob.glob(p + "/nvidia/**/lib", recursive=True)))'
  ) 2>/dev/null); do
    [ -e "$dir/libcublas.so.13" ] || [ -e "$dir/libcublasLt.so.13" ] || [ -e "$dir/libcudart.so.13" ] ||
      [ -e "$dir/libnccl.so.2" ] || [ -e "$dir/libcudnn.so.9" ] || continue
    case ":$CARRY_CUDA_DIRS:" in *":$dir:"*) ;; *) CARRY_CUDA_DIRS="$CARRY_CUDA_DIRS:$dir" ;; esac
  done
  export CARRY_CUDA_DIRS  # found once per job: the wrappers' children inherit it
fi
export LD_LIBRARY_PATH="$bundle/lib$CARRY_CUDA_DIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
