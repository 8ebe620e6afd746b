// Linear layer of the CUDA backend: the three GEMMs in the backend's precision (matmul.cpp), the
// bias through the GEMM (a broadcast in fp32, cuBLASLt's bias epilogue in bf16) and the bias
// gradient through the deterministic column reduction, always in fp32.
#include "backend/cuda/cuda_backend_impl.hpp"

namespace tessera::cuda {
namespace {

__global__ void broadcast_rows_kernel(float* out, const float* bias, int rows, int columns) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i < static_cast<std::size_t>(rows) * columns) out[i] = bias[i % columns];
}

}  // namespace

void broadcast_rows(float* out, const float* bias, int rows, int columns, cudaStream_t stream) {
  const std::size_t count = static_cast<std::size_t>(rows) * columns;
  broadcast_rows_kernel<<<blocks_for(count), kBlockThreads, 0, stream>>>(out, bias, rows, columns);
}

void CudaBackend::linear_forward(float* out, const float* in, const float* weight,
                                 const float* bias, int rows, int in_features, int out_features) {
  const std::size_t in_count = static_cast<std::size_t>(rows) * in_features;
  const std::size_t weight_count = static_cast<std::size_t>(out_features) * in_features;
  // out[rows, out] = in[rows, in] @ weight[out, in]^T + bias[out]
  matmul({'N', 'T', rows, out_features, in_features, in_features, in_features, out_features},
         operand(CastSlot::activation, in, in_count),
         operand(CastSlot::weight, weight, weight_count), 0.0f, out, bias);
}

void CudaBackend::linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                                  const float* in, const float* weight, int rows, int in_features,
                                  int out_features) {
  const std::size_t in_count = static_cast<std::size_t>(rows) * in_features;
  const std::size_t out_count = static_cast<std::size_t>(rows) * out_features;
  const std::size_t weight_count = static_cast<std::size_t>(out_features) * in_features;
  const Operand d_out_operand = operand(CastSlot::output_gradient, d_out, out_count);
  if (d_in != nullptr) {
    // d_in[rows, in] = d_out[rows, out] @ weight[out, in]
    matmul({'N', 'N', rows, in_features, out_features, out_features, in_features, in_features},
           d_out_operand, operand(CastSlot::weight, weight, weight_count), 0.0f, d_in);
  }
  // d_weight[out, in] += d_out[rows, out]^T @ in[rows, in]
  matmul({'T', 'N', out_features, in_features, rows, out_features, in_features, in_features},
         d_out_operand, operand(CastSlot::activation, in, in_count), 1.0f, d_weight);
  if (d_bias != nullptr)
    reduce_columns({d_bias, nullptr, d_out, nullptr, nullptr, nullptr, rows, out_features});
}

}  // namespace tessera::cuda
