// Linear layer of the CUDA backend: the three GEMMs through cuBLAS (row-major, FP32 compute), the
// bias broadcast as a kernel and the bias gradient through the deterministic column reduction.
#include "backend/cuda/cuda_backend_impl.hpp"

namespace tessera::cuda {
namespace {

__global__ void broadcast_rows_kernel(float* out, const float* bias, int rows, int columns) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i < static_cast<std::size_t>(rows) * columns) out[i] = bias[i % columns];
}

}  // namespace

void CudaBackend::linear_forward(float* out, const float* in, const float* weight,
                                 const float* bias, int rows, int in_features, int out_features) {
  float beta = 0.0f;
  if (bias != nullptr) {
    // Broadcast the bias into out, then let the GEMM add onto it (beta = 1), as the CPU does.
    const std::size_t count = static_cast<std::size_t>(rows) * out_features;
    broadcast_rows_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(out, bias, rows,
                                                                            out_features);
    check_launch();
    beta = 1.0f;
  }
  // out[rows, out] = in[rows, in] @ weight[out, in]^T
  gemm(cublas_, {'N', 'T', rows, out_features, in_features, in_features, in_features, out_features},
       1.0f, in, weight, beta, out);
}

void CudaBackend::linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                                  const float* in, const float* weight, int rows, int in_features,
                                  int out_features) {
  if (d_in != nullptr) {
    // d_in[rows, in] = d_out[rows, out] @ weight[out, in]
    gemm(cublas_,
         {'N', 'N', rows, in_features, out_features, out_features, in_features, in_features}, 1.0f,
         d_out, weight, 0.0f, d_in);
  }
  // d_weight[out, in] += d_out[rows, out]^T @ in[rows, in]
  gemm(cublas_, {'T', 'N', out_features, in_features, rows, out_features, in_features, in_features},
       1.0f, d_out, in, 1.0f, d_weight);
  if (d_bias != nullptr)
    reduce_columns({d_bias, nullptr, d_out, nullptr, nullptr, nullptr, rows, out_features});
}

}  // namespace tessera::cuda
