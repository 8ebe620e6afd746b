// Attention of incremental decoding on the CUDA backend: one block per (new row, head) reads its
// query and every cached key and value up to its own position from the KV cache (rows packed as
// qkv is). The scores go to a scratch row per (row, head); their maximum and the sum of their
// exponentials are block reductions (fixed order: the same bits from run to run), then each
// thread forms the weighted sum of the values for the dimensions it owns.
#include <cmath>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/device_reduce.cuh"

namespace tessera::cuda {
namespace {

constexpr int kDecodeThreads = 128;

__device__ inline float block_max(float value, float* shared) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  value = warp_max(value);
  __syncthreads();
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(value);
}

/// Block (i, h): query row i (position first + i), head h. scores holds `capacity` floats per
/// (row, head).
__global__ void cached_attention_kernel(float* out, float* scores, const float* cache, int first,
                                        int n_heads, int head_dim, int capacity) {
  __shared__ float shared[kWarpSize];
  const int i = blockIdx.x, h = blockIdx.y;
  const int keys = first + i + 1;
  const std::size_t width = static_cast<std::size_t>(n_heads) * head_dim;
  const std::size_t row_stride = 3 * width;
  const float* q = cache + static_cast<std::size_t>(first + i) * row_stride +
                   static_cast<std::size_t>(h) * head_dim;
  float* s = scores + (static_cast<std::size_t>(i) * n_heads + h) * capacity;
  const float scale = rsqrtf(static_cast<float>(head_dim));
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < keys; j += blockDim.x) {
    const float* k = cache + static_cast<std::size_t>(j) * row_stride + width +
                     static_cast<std::size_t>(h) * head_dim;
    float dot = 0.0f;
    for (int e = 0; e < head_dim; ++e) dot = fmaf(q[e], k[e], dot);
    s[j] = dot * scale;
    local_max = fmaxf(local_max, s[j]);
  }
  const float max = block_max(local_max, shared);
  float local_sum = 0.0f;
  for (int j = threadIdx.x; j < keys; j += blockDim.x) {
    s[j] = __expf(s[j] - max);
    local_sum += s[j];
  }
  const float total = block_sum(local_sum, shared);  // synchronises: every s[j] is written
  for (int e = threadIdx.x; e < head_dim; e += blockDim.x) {
    float sum = 0.0f;
    for (int j = 0; j < keys; ++j) {
      sum = fmaf(s[j],
                 cache[static_cast<std::size_t>(j) * row_stride + 2 * width +
                       static_cast<std::size_t>(h) * head_dim + e],
                 sum);
    }
    out[static_cast<std::size_t>(i) * width + static_cast<std::size_t>(h) * head_dim + e] =
        sum / total;
  }
}

}  // namespace

void CudaBackend::cached_attention_forward(float* out, const float* cache, int first, int count,
                                           int n_heads, int head_dim) {
  if (count == 0 || n_heads == 0) return;
  const int capacity = first + count;
  float* scores = static_cast<float*>(
      scratch(static_cast<std::size_t>(count) * n_heads * capacity * sizeof(float)));
  cached_attention_kernel<<<dim3(count, n_heads), kDecodeThreads, 0, stream_>>>(
      out, scores, cache, first, n_heads, head_dim, capacity);
  check_launch();
}

}  // namespace tessera::cuda
