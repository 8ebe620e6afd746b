// Causal multi-head attention of the CUDA backend, forward: a fused flash-style kernel that never
// stores the seq x seq scores. Backward is in attention_backward.cu; tiles in flash_attention.cuh.
//
// Per (batch, head, query tile of kTile rows), walking the key tiles 0 .. the diagonal one (tiles
// wholly above the diagonal are skipped):
//   S = Q K_t^T / sqrt(head_dim), masked to key <= query;
//   m' = max(m, rowmax(S));  l = l e^(m - m') + rowsum(e^(S - m'));  O = O e^(m - m') + e^(S - m')
//   V_t
// then out = O / l and the saved state is lse = m + log(l) per query row: batch * n_heads * seq
// floats instead of the batch * n_heads * seq * seq probabilities. fp32 CUDA-core math; the bf16
// precision runs the same algorithm with its tile products on tensor cores (attention_bf16.cu).
#include <cmath>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/flash_attention.cuh"

namespace tessera::cuda {
namespace {

using namespace flash;

template <int kHeadDim>
int forward_shared_bytes() {
  using T = Tiles<kHeadDim>;
  return static_cast<int>((3 * T::kMatrix + T::kScores) * sizeof(float));
}

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(float* out, float* lse, const float* qkv, AttentionShape s,
                             float scale) {
  using T = Tiles<kHeadDim>;
  extern __shared__ float shared[];
  float* q = shared;
  float* k = q + T::kMatrix;
  float* v = k + T::kMatrix;
  float* p = v + T::kMatrix;  // this key tile's e^(S - m'), [kTile, kTile]
  const int tile = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // the longest rows first
  const int first = tile * T::kTile;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const HeadView view = head_view(s, blockIdx.z, blockIdx.y);
  const float* keys = qkv + view.q + view.key_offset;
  load_tile<kHeadDim>(q, qkv + view.q, view.qkv_row, first, s.seq, s.head_dim);

  float acc[T::kPerThread][T::kDimsPerThread] = {};
  float row_max[T::kPerThread], row_sum[T::kPerThread];
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    row_max[i] = -INFINITY;
    row_sum[i] = 0.0f;
  }
  for (int key_tile = 0; key_tile <= tile; ++key_tile) {
    const int first_key = key_tile * T::kTile;
    __syncthreads();  // the previous tile's k, v and p are no longer read
    load_tile<kHeadDim>(k, keys, view.qkv_row, first_key, s.seq, s.head_dim);
    load_tile<kHeadDim>(v, keys + view.key_offset, view.qkv_row, first_key, s.seq, s.head_dim);
    __syncthreads();
    float scores[T::kPerThread][T::kPerThread];
    tile_dot<kHeadDim>(scores, q, k);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) {
      const int row = first + ty * T::kPerThread + i;
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j) {
        const int key = first_key + tx + kGrid * j;
        scores[i][j] = key <= row ? scores[i][j] * scale : -INFINITY;
        tile_max = fmaxf(tile_max, scores[i][j]);
      }
      // Every row holds an unmasked key in every tile it visits (key first_key <= row), so the
      // new maximum is finite and no exponent below is inf - inf.
      const float new_max = fmaxf(row_max[i], row_group_max(tile_max));
      const float rescale = expf(row_max[i] - new_max);
      float tile_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j) {
        const float e = expf(scores[i][j] - new_max);
        p[(ty * T::kPerThread + i) * T::kScoreStride + tx + kGrid * j] = e;
        tile_sum += e;
      }
      row_sum[i] = row_sum[i] * rescale + row_group_sum(tile_sum);
      row_max[i] = new_max;
#pragma unroll
      for (int c = 0; c < T::kDimsPerThread; ++c) acc[i][c] *= rescale;
    }
    __syncthreads();
    accumulate_product<kHeadDim>(acc, p, v);
  }

  float inverse_sum[T::kPerThread];
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    inverse_sum[i] = 1.0f / row_sum[i];
    const int row = first + ty * T::kPerThread + i;
    if (tx == 0 && row < s.seq) lse[view.row_value + row] = row_max[i] + logf(row_sum[i]);
  }
  store_rows<kHeadDim>(out + view.out, view.out_row, first, s.seq, s.head_dim, acc, inverse_sum);
}

}  // namespace

std::size_t CudaBackend::attention_state_count(const AttentionShape& shape) const {
  return static_cast<std::size_t>(shape.batch) * static_cast<std::size_t>(shape.n_heads) *
         static_cast<std::size_t>(shape.seq);
}

void CudaBackend::attention_forward(float* out, float* state, const float* qkv,
                                    const AttentionShape& shape) {
  if (shape.batch == 0 || shape.n_heads == 0 || shape.seq == 0) return;
  if (lt_ != nullptr) {  // bf16 precision: cuDNN, else tensor cores (attention_bf16.cu)
    if (attention_forward_cudnn(out, state, qkv, shape)) return;
    attention_forward_bf16(out, state, qkv, shape, stream_);
    check_launch();
    return;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  with_head_dim_bucket(shape.head_dim, [&](auto bucket) {
    constexpr int kHeadDim = decltype(bucket)::value;
    const int bytes = forward_shared_bytes<kHeadDim>();
    allow_shared_memory(attention_forward_kernel<kHeadDim>, bytes);
    const dim3 grid(tile_count(shape.seq, Tiles<kHeadDim>::kTile), shape.n_heads, shape.batch);
    attention_forward_kernel<kHeadDim>
        <<<grid, kThreads, bytes, stream_>>>(out, state, qkv, shape, scale);
    check_launch();
  });
}

}  // namespace tessera::cuda
