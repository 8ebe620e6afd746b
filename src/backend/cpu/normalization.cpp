// LayerNorm and RMSNorm of the CPU backend. Row statistics are fp32 with two passes (mean first,
// then squared deviations), which stays accurate when |mean| >> std.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {
namespace {

/// Columns per task when reducing parameter gradients over rows; tasks own disjoint columns.
constexpr int kColumnBlock = 64;

float row_mean(const float* x, int dim) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int c = 0; c < dim; ++c) sum += x[c];
  return sum / static_cast<float>(dim);
}

/// d_gain[c] += sum_r d_out[r, c] * xhat[r, c]; d_bias[c] += sum_r d_out[r, c] (if not null).
/// xhat[r, c] = (in[r, c] - mean[r]) * rstd[r], with mean null meaning zero (RMSNorm).
void reduce_norm_parameter_grads(float* d_gain, float* d_bias, const float* d_out, const float* in,
                                 const float* mean, const float* rstd, int rows, int dim) {
  const int blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int block = 0; block < blocks; ++block) {
    const int begin = block * kColumnBlock;
    const int end = std::min(dim, begin + kColumnBlock);
    for (int r = 0; r < rows; ++r) {
      const float* x = in + r * width;
      const float* g = d_out + r * width;
      const float shift = mean != nullptr ? mean[r] : 0.0f;
      for (int c = begin; c < end; ++c) d_gain[c] += g[c] * (x[c] - shift) * rstd[r];
      if (d_bias == nullptr) continue;
      for (int c = begin; c < end; ++c) d_bias[c] += g[c];
    }
  }
}

}  // namespace

void CpuBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                   const float* gain, const float* bias, int rows, int dim,
                                   float eps) {
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = in + r * width;
    float* y = out + r * width;
    const float mu = row_mean(x, dim);
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int c = 0; c < dim; ++c) squares += (x[c] - mu) * (x[c] - mu);
    const float inv_std = 1.0f / std::sqrt(squares / static_cast<float>(dim) + eps);
    for (int c = 0; c < dim; ++c) {
      y[c] = (x[c] - mu) * inv_std * gain[c] + (bias != nullptr ? bias[c] : 0.0f);
    }
    mean[r] = mu;
    rstd[r] = inv_std;
  }
}

void CpuBackend::layernorm_backward(float* d_in, float* d_gain, float* d_bias, const float* d_out,
                                    const float* in, const float* gain, const float* mean,
                                    const float* rstd, int rows, int dim) {
  // With xhat = (x - mean) rstd and dxhat = d_out * gain:
  // d_in = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
  const std::size_t width = static_cast<std::size_t>(dim);
  const float inv_dim = 1.0f / static_cast<float>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = in + r * width;
    const float* g = d_out + r * width;
    float* dx = d_in + r * width;
    float sum_dxhat = 0.0f;
    float sum_dxhat_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_dxhat, sum_dxhat_xhat)
    for (int c = 0; c < dim; ++c) {
      const float dxhat = g[c] * gain[c];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += dxhat * (x[c] - mean[r]) * rstd[r];
    }
    const float mean_dxhat = sum_dxhat * inv_dim;
    const float mean_dxhat_xhat = sum_dxhat_xhat * inv_dim;
    for (int c = 0; c < dim; ++c) {
      const float xhat = (x[c] - mean[r]) * rstd[r];
      dx[c] = rstd[r] * (g[c] * gain[c] - mean_dxhat - xhat * mean_dxhat_xhat);
    }
  }
  reduce_norm_parameter_grads(d_gain, d_bias, d_out, in, mean, rstd, rows, dim);
}

void CpuBackend::rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain,
                                 int rows, int dim, float eps) {
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = in + r * width;
    float* y = out + r * width;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int c = 0; c < dim; ++c) squares += x[c] * x[c];
    const float inv_rms = 1.0f / std::sqrt(squares / static_cast<float>(dim) + eps);
    for (int c = 0; c < dim; ++c) y[c] = x[c] * inv_rms * gain[c];
    rstd[r] = inv_rms;
  }
}

void CpuBackend::rmsnorm_backward(float* d_in, float* d_gain, const float* d_out, const float* in,
                                  const float* gain, const float* rstd, int rows, int dim) {
  // y = x rstd gain, rstd = (mean(x^2) + eps)^(-1/2):
  // d_in = rstd (d_out gain - x rstd^2 mean(d_out gain x)).
  const std::size_t width = static_cast<std::size_t>(dim);
  const float inv_dim = 1.0f / static_cast<float>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = in + r * width;
    const float* g = d_out + r * width;
    float* dx = d_in + r * width;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int c = 0; c < dim; ++c) dot += g[c] * gain[c] * x[c];
    const float correction = rstd[r] * rstd[r] * dot * inv_dim;
    for (int c = 0; c < dim; ++c) dx[c] = rstd[r] * (g[c] * gain[c] - x[c] * correction);
  }
  reduce_norm_parameter_grads(d_gain, nullptr, d_out, in, nullptr, rstd, rows, dim);
}

}  // namespace tessera::cpu
