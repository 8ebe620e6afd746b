// Softmax cross-entropy with z-loss, fused with its gradient, of the CUDA backend (whole rows,
// and the vocab-parallel pieces: shard statistics, re-basing, finish): one block per
// row, one pass for an online (max, sum of exponentials), one pass for the gradient.
#include <string>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/device_reduce.cuh"
#include "core/error.hpp"

namespace tessera::cuda {
namespace {

/// Running max and sum of exp(x - max) of the values seen so far.
struct OnlineSum {
  float max = -INFINITY;
  float sum = 0.0f;
};

__device__ inline OnlineSum combine(OnlineSum a, OnlineSum b) {
  if (a.max == -INFINITY) return b;  // also avoids -inf - -inf when both are empty
  if (b.max == -INFINITY) return a;
  const float max = fmaxf(a.max, b.max);
  return {max, a.sum * expf(a.max - max) + b.sum * expf(b.max - max)};
}

__device__ inline OnlineSum warp_combine(OnlineSum value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const OnlineSum other{__shfl_xor_sync(0xffffffffu, value.max, offset),
                          __shfl_xor_sync(0xffffffffu, value.sum, offset)};
    value = combine(value, other);
  }
  return value;
}

/// Max and sum of exp(x_j - max) over the row; every thread of the block gets them.
__device__ OnlineSum block_online_sum(const float* x, int vocab) {
  __shared__ float shared_max[kWarpSize], shared_sum[kWarpSize];
  OnlineSum own;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) own = combine(own, {x[j], 1.0f});
  own = warp_combine(own);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) {
    shared_max[warp] = own.max;
    shared_sum[warp] = own.sum;
  }
  __syncthreads();
  own = lane < static_cast<int>(blockDim.x / kWarpSize)
            ? OnlineSum{shared_max[lane], shared_sum[lane]}
            : OnlineSum{};
  return warp_combine(own);
}

__device__ float block_log_sum_exp(const float* x, int vocab) {
  const OnlineSum total = block_online_sum(x, vocab);
  return total.max + logf(total.sum);
}

/// losses[r] = lse - x[target] + z_loss lse^2; d_logits (may alias logits) =
/// grad_scale (softmax (1 + 2 z_loss lse) - onehot(target)). Bad targets set *error = row + 1.
__global__ void cross_entropy_kernel(float* losses, float* d_logits, const float* logits,
                                     const int32_t* targets, int vocab, float z_loss,
                                     float grad_scale, int* error) {
  const int r = blockIdx.x;
  const int32_t target = targets[r];
  if (target < 0 || target >= vocab) {  // uniform over the block: every thread returns
    if (threadIdx.x == 0) {
      atomicMax(error, r + 1);
      losses[r] = NAN;
    }
    return;
  }
  const float* x = logits + static_cast<std::size_t>(r) * vocab;
  const float lse = block_log_sum_exp(x, vocab);
  const float target_logit = x[target];
  if (threadIdx.x == 0) losses[r] = lse - target_logit + z_loss * lse * lse;
  if (d_logits == nullptr) return;
  __syncthreads();  // every read of the target logit precedes the writes when d_logits aliases
  float* dx = d_logits + static_cast<std::size_t>(r) * vocab;
  const float factor = grad_scale * (1.0f + 2.0f * z_loss * lse);
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float g = expf(x[j] - lse) * factor;
    dx[j] = j == target ? g - grad_scale : g;
  }
}

/// Per-shard statistics of the vocab-parallel loss: row max, sum of exp(x - max), and the
/// target logit when this shard holds the target (else 0).
__global__ void shard_stats_kernel(float* row_max, float* row_sum, float* target_logit,
                                   const float* logits, const int32_t* targets, int vocab_local,
                                   int vocab_begin) {
  const int r = blockIdx.x;
  const float* x = logits + static_cast<std::size_t>(r) * vocab_local;
  const OnlineSum total = block_online_sum(x, vocab_local);
  if (threadIdx.x != 0) return;
  const int local_target = targets[r] - vocab_begin;
  row_max[r] = total.max;
  row_sum[r] = total.sum;
  target_logit[r] = local_target >= 0 && local_target < vocab_local ? x[local_target] : 0.0f;
}

__global__ void rebase_row_sums_kernel(float* row_sum, const float* row_max,
                                       const float* global_max, int rows) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < rows) row_sum[r] *= expf(row_max[r] - global_max[r]);
}

/// Loss from the group's statistics and the gradient of this shard's columns (d_logits may
/// alias logits: each thread reads x[j] before writing dx[j], and nothing else reads x).
__global__ void shard_finish_kernel(float* losses, float* d_logits, const float* logits,
                                    const int32_t* targets, const float* global_max,
                                    const float* global_sum, const float* target_logit,
                                    int vocab_local, int vocab_begin, float z_loss,
                                    float grad_scale) {
  const int r = blockIdx.x;
  const float lse = global_max[r] + logf(global_sum[r]);
  if (threadIdx.x == 0) losses[r] = lse - target_logit[r] + z_loss * lse * lse;
  if (d_logits == nullptr) return;
  const float* x = logits + static_cast<std::size_t>(r) * vocab_local;
  float* dx = d_logits + static_cast<std::size_t>(r) * vocab_local;
  const float factor = grad_scale * (1.0f + 2.0f * z_loss * lse);
  const int local_target = targets[r] - vocab_begin;
  for (int j = threadIdx.x; j < vocab_local; j += blockDim.x) {
    const float g = expf(x[j] - lse) * factor;
    dx[j] = j == local_target ? g - grad_scale : g;
  }
}

}  // namespace

void CudaBackend::softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                                        const int32_t* targets, int rows, int vocab, float z_loss,
                                        float grad_scale) {
  if (rows == 0) return;
  TESSERA_CUDA_CHECK(cudaMemsetAsync(error_flag_, 0, sizeof(int), stream_));
  cross_entropy_kernel<<<rows, kBlockThreads, 0, stream_>>>(losses, d_logits, logits, targets,
                                                            vocab, z_loss, grad_scale, error_flag_);
  check_launch();
  // Validating the targets costs one synchronisation per call; the caller reads the losses back
  // right after anyway.
  int bad_row = 0;
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(&bad_row, error_flag_, sizeof(int), cudaMemcpyDeviceToHost, stream_));
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
  TESSERA_CHECK(bad_row == 0, "the target of row " + std::to_string(bad_row - 1) +
                                  " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

}  // namespace tessera::cuda

namespace tessera::cuda {

void CudaBackend::cross_entropy_shard_stats(float* row_max, float* row_sum, float* target_logit,
                                            const float* logits, const int32_t* targets, int rows,
                                            int vocab_local, int vocab_begin) {
  if (rows == 0) return;
  shard_stats_kernel<<<rows, kBlockThreads, 0, stream_>>>(row_max, row_sum, target_logit, logits,
                                                          targets, vocab_local, vocab_begin);
  check_launch();
}

void CudaBackend::rebase_row_sums(float* row_sum, const float* row_max, const float* global_max,
                                  int rows) {
  if (rows == 0) return;
  rebase_row_sums_kernel<<<blocks_for(static_cast<std::size_t>(rows)), kBlockThreads, 0, stream_>>>(
      row_sum, row_max, global_max, rows);
  check_launch();
}

void CudaBackend::cross_entropy_shard_finish(float* losses, float* d_logits, const float* logits,
                                             const int32_t* targets, const float* global_max,
                                             const float* global_sum, const float* target_logit,
                                             int rows, int vocab_local, int vocab_begin,
                                             float z_loss, float grad_scale) {
  if (rows == 0) return;
  shard_finish_kernel<<<rows, kBlockThreads, 0, stream_>>>(
      losses, d_logits, logits, targets, global_max, global_sum, target_logit, vocab_local,
      vocab_begin, z_loss, grad_scale);
  check_launch();
}

}  // namespace tessera::cuda
