// LayerNorm and RMSNorm of the CUDA backend: one warp per row, fp32 statistics with two passes
// (mean first, then squared deviations), like the CPU backend. Parameter gradients go through the
// deterministic column reduction (column_reduction.cu).
#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/device_reduce.cuh"

namespace tessera::cuda {
namespace {

constexpr int kRowsPerBlock = kBlockThreads / kWarpSize;

/// Row handled by this warp, or -1 past the end.
__device__ inline int warp_row(int rows) {
  const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarpSize;
  return row < rows ? row : -1;
}

__device__ inline float warp_row_sum(const float* x, int dim) {
  float sum = 0.0f;
  for (int c = threadIdx.x % kWarpSize; c < dim; c += kWarpSize) sum += x[c];
  return warp_sum(sum);
}

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* in,
                                         const float* gain, const float* bias, int rows, int dim,
                                         float eps) {
  const int r = warp_row(rows);
  if (r < 0) return;
  const int lane = threadIdx.x % kWarpSize;
  const float* x = in + static_cast<std::size_t>(r) * dim;
  float* y = out + static_cast<std::size_t>(r) * dim;
  const float mu = warp_row_sum(x, dim) / static_cast<float>(dim);
  float squares = 0.0f;
  for (int c = lane; c < dim; c += kWarpSize) squares += (x[c] - mu) * (x[c] - mu);
  const float inv_std = 1.0f / sqrtf(warp_sum(squares) / static_cast<float>(dim) + eps);
  for (int c = lane; c < dim; c += kWarpSize) {
    y[c] = (x[c] - mu) * inv_std * gain[c] + (bias != nullptr ? bias[c] : 0.0f);
  }
  if (lane == 0) {
    mean[r] = mu;
    rstd[r] = inv_std;
  }
}

/// d_in = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = d_out * gain.
__global__ void layernorm_backward_kernel(float* d_in, const float* d_out, const float* in,
                                          const float* gain, const float* mean, const float* rstd,
                                          int rows, int dim) {
  const int r = warp_row(rows);
  if (r < 0) return;
  const int lane = threadIdx.x % kWarpSize;
  const std::size_t offset = static_cast<std::size_t>(r) * dim;
  const float* x = in + offset;
  const float* g = d_out + offset;
  float* dx = d_in + offset;
  const float mu = mean[r];
  const float inv_std = rstd[r];
  float sum_dxhat = 0.0f;
  float sum_dxhat_xhat = 0.0f;
  for (int c = lane; c < dim; c += kWarpSize) {
    const float dxhat = g[c] * gain[c];
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * (x[c] - mu) * inv_std;
  }
  const float mean_dxhat = warp_sum(sum_dxhat) / static_cast<float>(dim);
  const float mean_dxhat_xhat = warp_sum(sum_dxhat_xhat) / static_cast<float>(dim);
  for (int c = lane; c < dim; c += kWarpSize) {
    const float xhat = (x[c] - mu) * inv_std;
    dx[c] = inv_std * (g[c] * gain[c] - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* in, const float* gain,
                                       int rows, int dim, float eps) {
  const int r = warp_row(rows);
  if (r < 0) return;
  const int lane = threadIdx.x % kWarpSize;
  const float* x = in + static_cast<std::size_t>(r) * dim;
  float* y = out + static_cast<std::size_t>(r) * dim;
  float squares = 0.0f;
  for (int c = lane; c < dim; c += kWarpSize) squares += x[c] * x[c];
  const float inv_rms = 1.0f / sqrtf(warp_sum(squares) / static_cast<float>(dim) + eps);
  for (int c = lane; c < dim; c += kWarpSize) y[c] = x[c] * inv_rms * gain[c];
  if (lane == 0) rstd[r] = inv_rms;
}

/// d_in = rstd (d_out gain - x rstd^2 mean(d_out gain x)).
__global__ void rmsnorm_backward_kernel(float* d_in, const float* d_out, const float* in,
                                        const float* gain, const float* rstd, int rows, int dim) {
  const int r = warp_row(rows);
  if (r < 0) return;
  const int lane = threadIdx.x % kWarpSize;
  const std::size_t offset = static_cast<std::size_t>(r) * dim;
  const float* x = in + offset;
  const float* g = d_out + offset;
  float* dx = d_in + offset;
  float dot = 0.0f;
  for (int c = lane; c < dim; c += kWarpSize) dot += g[c] * gain[c] * x[c];
  const float inv_rms = rstd[r];
  const float correction = inv_rms * inv_rms * warp_sum(dot) / static_cast<float>(dim);
  for (int c = lane; c < dim; c += kWarpSize)
    dx[c] = inv_rms * (g[c] * gain[c] - x[c] * correction);
}

int row_blocks(int rows) { return blocks_for(static_cast<std::size_t>(rows), kRowsPerBlock); }

}  // namespace

void CudaBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                    const float* gain, const float* bias, int rows, int dim,
                                    float eps) {
  if (rows == 0) return;
  layernorm_forward_kernel<<<row_blocks(rows), kBlockThreads, 0, stream_>>>(
      out, mean, rstd, in, gain, bias, rows, dim, eps);
  check_launch();
}

void CudaBackend::layernorm_backward(float* d_in, float* d_gain, float* d_bias, const float* d_out,
                                     const float* in, const float* gain, const float* mean,
                                     const float* rstd, int rows, int dim) {
  if (rows == 0) return;
  layernorm_backward_kernel<<<row_blocks(rows), kBlockThreads, 0, stream_>>>(d_in, d_out, in, gain,
                                                                             mean, rstd, rows, dim);
  check_launch();
  reduce_columns({d_gain, d_bias, d_out, in, mean, rstd, rows, dim});
}

void CudaBackend::rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain,
                                  int rows, int dim, float eps) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<row_blocks(rows), kBlockThreads, 0, stream_>>>(out, rstd, in, gain, rows,
                                                                          dim, eps);
  check_launch();
}

void CudaBackend::rmsnorm_backward(float* d_in, float* d_gain, const float* d_out, const float* in,
                                   const float* gain, const float* rstd, int rows, int dim) {
  if (rows == 0) return;
  rmsnorm_backward_kernel<<<row_blocks(rows), kBlockThreads, 0, stream_>>>(d_in, d_out, in, gain,
                                                                           rstd, rows, dim);
  check_launch();
  reduce_columns({d_gain, nullptr, d_out, in, nullptr, rstd, rows, dim});
}

}  // namespace tessera::cuda
