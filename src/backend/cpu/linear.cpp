// Linear layer of the CPU backend. In bf16 precision Bf16Linear runs its GEMMs. In fp32 the
// forward and input-gradient GEMMs go through dnnl_sgemm, the weight gradient through a cached
// oneDNN matmul primitive (the faster path for its transposed, long-k shape; see
// matmul_cache.hpp); only the bias broadcast and the bias-gradient column sums are loops here.
#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {
namespace {

/// Columns per task of the bias-gradient reduction; each task sums its columns over all rows in
/// row order (deterministic), reading rows contiguously so the inner loop vectorises.
constexpr int kColumnBlock = 256;

void add_column_sums(float* d_bias, const float* d_out, int rows, int columns) {
  const int blocks = (columns + kColumnBlock - 1) / kColumnBlock;
  const std::size_t width = static_cast<std::size_t>(columns);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int block = 0; block < blocks; ++block) {
    const int begin = block * kColumnBlock;
    const int count = std::min(columns, begin + kColumnBlock) - begin;
    float sums[kColumnBlock] = {};
    for (int r = 0; r < rows; ++r) {
      const float* row = d_out + r * width + begin;
#pragma omp simd
      for (int c = 0; c < count; ++c) sums[c] += row[c];
    }
    for (int c = 0; c < count; ++c) d_bias[begin + c] += sums[c];
  }
}

}  // namespace

void CpuBackend::linear_forward(float* out, const float* in, const float* weight, const float* bias,
                                int rows, int in_features, int out_features) {
  if (bf16_linear_) {
    bf16_linear_->forward(out, in, weight, bias, rows, in_features, out_features);
    return;
  }
  const std::size_t width = static_cast<std::size_t>(out_features);
  float beta = 0.0f;
  if (bias != nullptr) {
    // Broadcast the bias into out, then let the GEMM add onto it (beta = 1).
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
    for (int r = 0; r < rows; ++r) std::memcpy(out + r * width, bias, width * sizeof(float));
    beta = 1.0f;
  }
  // out[rows, out] = in[rows, in] @ weight[out, in]^T
  sgemm('N', 'T', rows, out_features, in_features, 1.0f, in, in_features, weight, in_features, beta,
        out, out_features);
}

void CpuBackend::linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                                 const float* in, const float* weight, int rows, int in_features,
                                 int out_features) {
  if (d_bias != nullptr) add_column_sums(d_bias, d_out, rows, out_features);
  if (bf16_linear_) {
    bf16_linear_->backward(d_in, d_weight, d_out, in, weight, rows, in_features, out_features);
    return;
  }
  if (d_in != nullptr) {
    // d_in[rows, in] = d_out[rows, out] @ weight[out, in]
    sgemm('N', 'N', rows, in_features, out_features, 1.0f, d_out, out_features, weight, in_features,
          0.0f, d_in, in_features);
  }
  // d_weight[out, in] += d_out[rows, out]^T @ in[rows, in]
  weight_gradient_matmuls_.run(
      linear_gemm_shapes(rows, in_features, out_features, false, false).weight_gradient, d_out, in,
      d_weight);
}

}  // namespace tessera::cpu
