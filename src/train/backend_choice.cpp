#include "train/backend_choice.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include "core/error.hpp"

#ifdef TESSERA_WITH_KOKKOS
#include "backend/kokkos/kokkos_backend.hpp"
#endif

#ifdef TESSERA_WITH_CUDA
#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "parallel/nccl_communicator.hpp"
#endif

namespace tessera {
namespace {

GemmPrecision gemm_precision(Precision precision) {
  return precision == Precision::bf16 ? GemmPrecision::bf16 : GemmPrecision::fp32;
}

/// The Kokkos backend of this build; throws UsageError in a build without it.
std::unique_ptr<Backend> make_kokkos_backend_if_built() {
#ifdef TESSERA_WITH_KOKKOS
  return make_kokkos_backend();
#else
  throw UsageError(
      "train.backend = \"kokkos\" (or calibrate --backend kokkos) needs a tessera built with "
      "Kokkos, and this one was built without; rebuild with cmake -DTESSERA_KOKKOS=ON "
      "(doc/kokkos.md), or use the cpu backend");
#endif
}

#ifndef TESSERA_WITH_CUDA
[[noreturn]] void throw_cuda_not_built() {
  throw UsageError(
      "train.backend = \"cuda\" (or calibrate --backend cuda) needs a tessera built with CUDA, "
      "and this one was built without; rebuild with cmake -DTESSERA_CUDA=ON, or use the cpu "
      "backend");
}
#endif

#ifdef TESSERA_WITH_CUDA

std::unique_ptr<Backend> make_cuda_training_backend(const Config& config,
                                                    ParallelContext& parallel) {
  const auto [local_rank, local_ranks] = node_placement(parallel);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  // Two ranks on one GPU would share its memory and serialise; NCCL refuses them outright.
  const bool enough = local_ranks <= devices;
  if (parallel.world().all_reduce_max_double(enough ? 0.0 : 1.0) > 0.0) {
    throw UsageError(fmt::format(
        "train.backend = \"cuda\" needs one GPU per rank, but a node runs {} ranks and sees {} "
        "GPUs; start one rank per GPU (srun --ntasks-per-node = --gpus-per-node)",
        local_ranks, devices));
  }
  TESSERA_CUDA_CHECK(cudaSetDevice(local_rank));
  std::unique_ptr<Backend> backend = make_cuda_backend(gemm_precision(config.train.precision));
  const cudaStream_t stream = cuda_compute_stream(*backend);
  parallel.use_device_communicators([stream](UniqueMpiComm group) -> std::unique_ptr<Communicator> {
    return std::make_unique<NcclCommunicator>(std::move(group), stream);
  });
  return backend;
}
#endif

}  // namespace

bool cuda_backend_built() {
#ifdef TESSERA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_training_backend(const Config& config, ParallelContext& parallel) {
  if (config.train.backend == BackendKind::cpu) {
    return make_cpu_backend(gemm_precision(config.train.precision));
  }
  // Its buffers are where the Kokkos build puts them; the ranks' communicators (MPI) are handed
  // them as they are, which on a GPU build needs a GPU-aware MPI (doc/kokkos.md).
  if (config.train.backend == BackendKind::kokkos) return make_kokkos_backend_if_built();
#ifdef TESSERA_WITH_CUDA
  return make_cuda_training_backend(config, parallel);
#else
  static_cast<void>(parallel);
  throw_cuda_not_built();
#endif
}

std::unique_ptr<Backend> make_device_backend(BackendKind kind, Precision precision) {
  if (kind == BackendKind::cpu) return make_cpu_backend(gemm_precision(precision));
  if (kind == BackendKind::kokkos) {
    if (precision != Precision::fp32) {
      throw UsageError("the kokkos backend computes in fp32 only; use --precision fp32");
    }
    return make_kokkos_backend_if_built();
  }
#ifdef TESSERA_WITH_CUDA
  return make_cuda_backend(gemm_precision(precision));
#else
  throw_cuda_not_built();
#endif
}

}  // namespace tessera
