// Row-major GEMMs through column-major cuBLAS. A row-major matrix read as column-major is its
// transpose, so C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major: swap the
// operands (and m with n) and keep each operand's own transpose flag.
#include <cublas_v2.h>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"

namespace tessera::cuda {
namespace {

cublasOperation_t operation(char trans) { return trans == 'T' ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

void gemm(cublasHandle_t handle, const GemmShape& s, float alpha, const float* a, const float* b,
          float beta, float* c) {
  TESSERA_CUDA_CHECK(cublasGemmEx(handle, operation(s.trans_b), operation(s.trans_a), s.n, s.m, s.k,
                                  &alpha, b, CUDA_R_32F, s.ldb, a, CUDA_R_32F, s.lda, &beta, c,
                                  CUDA_R_32F, s.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_strided_batched(cublasHandle_t handle, const GemmShape& s, float alpha, const float* a,
                          long long stride_a, const float* b, long long stride_b, float beta,
                          float* c, long long stride_c, int batch) {
  TESSERA_CUDA_CHECK(cublasGemmStridedBatchedEx(
      handle, operation(s.trans_b), operation(s.trans_a), s.n, s.m, s.k, &alpha, b, CUDA_R_32F,
      s.ldb, stride_b, a, CUDA_R_32F, s.lda, stride_a, &beta, c, CUDA_R_32F, s.ldc, stride_c, batch,
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_bf16(cublasHandle_t handle, const Bf16Gemm& job) {
  const GemmShape& s = job.shape;
  TESSERA_CUDA_CHECK(cublasGemmStridedBatchedEx(
      handle, operation(s.trans_b), operation(s.trans_a), s.n, s.m, s.k, &job.alpha, job.b,
      CUDA_R_16BF, s.ldb, job.stride_b, job.a, CUDA_R_16BF, s.lda, job.stride_a, &job.beta, job.c,
      CUDA_R_32F, s.ldc, job.stride_c, job.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace tessera::cuda
