// The CUDA backend's GEMM entry points: each op hands over its operands once (operand) and runs
// its GEMMs (matmul, matmul_batched) without knowing the precision. fp32 runs exactly the cuBLAS
// calls of gemm.cpp; bf16 casts each operand into its slot of reusable bf16 buffers and runs
// cuBLASLt (lt_matmul.cpp), falling back to cublasGemmStridedBatchedEx where cuBLASLt has no
// algorithm for a layout.
#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/lt_matmul.hpp"
#include "core/error.hpp"

namespace tessera::cuda {

Operand CudaBackend::operand(CastSlot slot, const float* matrix, std::size_t count) {
  if (lt_ == nullptr) return {matrix, nullptr};
  DeviceBlock& block = cast_buffers_[static_cast<std::size_t>(slot)];
  auto* copy = static_cast<__nv_bfloat16*>(grow(block, count * sizeof(__nv_bfloat16)));
  cast_to_bf16(copy, matrix, count, stream_);
  check_launch();
  return {matrix, copy};
}

void CudaBackend::matmul(const GemmShape& shape, Operand a, Operand b, float beta, float* c,
                         const float* bias) {
  TESSERA_CHECK(bias == nullptr || beta == 0.0f, "a GEMM with a bias must overwrite its output");
  if (a.bf16 == nullptr || b.bf16 == nullptr) {
    TESSERA_CHECK(a.bf16 == b.bf16, "a GEMM got one bf16 and one fp32 operand");
    if (bias != nullptr) {
      broadcast_rows(c, bias, shape.m, shape.n, stream_);
      check_launch();
      beta = 1.0f;
    }
    gemm(cublas_, shape, 1.0f, a.fp32, b.fp32, beta, c);
    return;
  }
  run_bf16({shape, 1.0f, beta, a.bf16, 0, b.bf16, 0, c, 0, 1, bias});
}

void CudaBackend::matmul_batched(const GemmShape& shape, float alpha, Operand a, long long stride_a,
                                 Operand b, long long stride_b, float beta, float* c,
                                 long long stride_c, int batch) {
  if (a.bf16 == nullptr || b.bf16 == nullptr) {
    TESSERA_CHECK(a.bf16 == b.bf16, "a GEMM got one bf16 and one fp32 operand");
    gemm_strided_batched(cublas_, shape, alpha, a.fp32, stride_a, b.fp32, stride_b, beta, c,
                         stride_c, batch);
    return;
  }
  run_bf16({shape, alpha, beta, a.bf16, stride_a, b.bf16, stride_b, c, stride_c, batch, nullptr});
}

void CudaBackend::run_bf16(Bf16Gemm job) {
  if (lt_->try_run(job)) return;
  if (job.bias != nullptr) {  // no bias epilogue for this layout: broadcast, then add onto it
    broadcast_rows(job.c, job.bias, job.shape.m, job.shape.n, stream_);
    check_launch();
    job.bias = nullptr;
    job.beta = 1.0f;
    if (lt_->try_run(job)) return;
  }
  gemm_bf16(cublas_, job);
}

}  // namespace tessera::cuda
