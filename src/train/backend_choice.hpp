// Which backend a training run computes on (train.backend), and on which device.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "parallel/parallel_context.hpp"

namespace tessera {

/// Whether this build of tessera has the CUDA backend (built with -DTESSERA_CUDA=ON).
bool cuda_backend_built();

/// The backend config.train.backend names, computing its GEMMs in config.train.precision. "cuda"
/// gives each rank the GPU of its node-local rank and moves the tensor, data and pipeline groups
/// of `parallel` onto NCCL; "kokkos" computes on the Kokkos build's default execution space, its
/// buffers handed to the MPI groups as they are. Throws UsageError (on every rank) when the
/// backend is not built in, a node has fewer GPUs than ranks, or bf16 is asked of a CPU without
/// bf16 kernels.
std::unique_ptr<Backend> make_training_backend(const Config& config, ParallelContext& parallel);

/// A backend of `kind` computing in `precision` for a tool of one process that measures one
/// device (the CPU, or the first GPU), with no communicators. Throws UsageError as above.
std::unique_ptr<Backend> make_device_backend(BackendKind kind, Precision precision);

}  // namespace tessera
