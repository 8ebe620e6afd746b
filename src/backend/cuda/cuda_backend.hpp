// The CUDA implementation of the kernel seam (backend/backend.hpp).
//
// Storage is fp32, like the CPU backend. GEMMs run in one of two precisions (GemmPrecision): fp32
// through cuBLAS with FP32 compute (no TF32), so the two backends agree to a few ulps per
// reduction step; or bf16 mixed precision in the style of PyTorch's autocast, where every GEMM
// rounds its two operands to bf16 and accumulates in fp32 through cuBLASLt, and attention runs
// on cuDNN's fused flash-attention engines (CudaAttention), while norms, softmax statistics,
// cross-entropy and AdamW stay fp32. Every kernel is run-to-run bitwise reproducible: reductions
// use fixed trees and fixed partitions, never float atomics, cuBLASLt's algorithm and cuDNN's
// plan are chosen once per shape, and cuDNN's attention backward runs in its atomic-free form.
// All work is ordered on one CUDA stream owned by the backend; copies to the host synchronise it.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "backend/backend.hpp"

namespace tessera {

/// True when a CUDA driver and at least one device are usable. Never throws or aborts, also on a
/// machine without a GPU or without the driver library.
bool cuda_device_available();

/// Which attention the bf16 precision runs (fp32 always runs tessera's own fp32 kernels).
enum class CudaAttention {
  cudnn,   ///< cuDNN's fused flash attention for every shape it takes, tessera's kernel otherwise
  native,  ///< tessera's own kernel with bf16 tensor-core tiles (attention_bf16.cu)
};

/// The CUDA backend on the current device; throws UsageError when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(GemmPrecision precision = GemmPrecision::fp32,
                                           CudaAttention attention = CudaAttention::cudnn);

/// The stream a CUDA backend computes on, for communication that must be ordered with it
/// (parallel/nccl_communicator.hpp). Throws InternalError when `backend` is not a CUDA backend.
cudaStream_t cuda_compute_stream(Backend& backend);

}  // namespace tessera
