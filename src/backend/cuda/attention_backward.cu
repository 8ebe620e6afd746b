// Causal multi-head attention of the CUDA backend, backward: recomputes the probabilities tile by
// tile from the saved log-sum-exp, P = e^(Q K^T / sqrt(head_dim) - lse), and never stores them.
//
//   dV = P^T dO;  dP = dO V^T;  D = rowsum(P * dP) = rowsum(dO * O);  dS = P * (dP - D) /
//   sqrt(head_dim);  dQ = dS K;  dK = dS^T Q.
// Two kernels, each owning what it writes, so there are no atomics and the result is bitwise
// reproducible: the first, per query tile, takes D from the forward's output O (no sweep over the
// keys) and sweeps the key tiles once for dQ; the second, per key tile, sweeps the query tiles for
// dK and dV with the D the first one saved.
#include <cmath>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/flash_attention.cuh"

namespace tessera::cuda {
namespace {

using namespace flash;

template <int kHeadDim>
int query_kernel_shared_bytes() {
  using T = Tiles<kHeadDim>;
  return static_cast<int>((4 * T::kMatrix + T::kScores) * sizeof(float));
}

/// D = rowsum(d_o * o) of the thread's rows ty * kPerThread + i, two [kTile, head] tiles in shared
/// memory; every thread of a thread-grid row gets the whole sum.
template <int kHeadDim>
__device__ inline void output_rowsums(float (&row_d)[Tiles<kHeadDim>::kPerThread], const float* d_o,
                                      const float* o) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    const int at = (ty * T::kPerThread + i) * T::kStride + tx;
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < T::kDimsPerThread; ++c)
      sum = fmaf(d_o[at + kGrid * c], o[at + kGrid * c], sum);
    row_d[i] = row_group_sum(sum);
  }
}

/// Per (batch, head, query tile): D of its rows (into d_rowsum) and dQ (into d_qkv's query part).
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    attention_query_gradient_kernel(float* d_qkv, float* d_rowsum, const float* d_out,
                                    const float* qkv, const float* out, const float* lse,
                                    AttentionShape s, float scale) {
  using T = Tiles<kHeadDim>;
  extern __shared__ float shared[];
  float* q = shared;
  float* d_o = q + T::kMatrix;
  float* k = d_o + T::kMatrix;
  float* v = k + T::kMatrix;
  float* d_s = v + T::kMatrix;                                    // [kTile, kTile]
  const int tile = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // the longest rows first
  const int first = tile * T::kTile;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const HeadView view = head_view(s, blockIdx.z, blockIdx.y);
  const float* keys = qkv + view.q + view.key_offset;
  load_tile<kHeadDim>(q, qkv + view.q, view.qkv_row, first, s.seq, s.head_dim);
  load_tile<kHeadDim>(d_o, d_out + view.out, view.out_row, first, s.seq, s.head_dim);
  float row_lse[T::kPerThread];
  load_row_values<kHeadDim>(row_lse, lse + view.row_value, first, s.seq, /*by_ty=*/true);

  // D = rowsum(dO * O), with O in k's place until the sweep needs it.
  load_tile<kHeadDim>(k, out + view.out, view.out_row, first, s.seq, s.head_dim);
  __syncthreads();
  float row_d[T::kPerThread];
  output_rowsums<kHeadDim>(row_d, d_o, k);

  // dS, then dQ += dS K.
  float acc[T::kPerThread][T::kDimsPerThread] = {};
  for (int key_tile = 0; key_tile <= tile; ++key_tile) {
    __syncthreads();  // the previous tile's k and d_s are no longer read
    load_tile<kHeadDim>(k, keys, view.qkv_row, key_tile * T::kTile, s.seq, s.head_dim);
    load_tile<kHeadDim>(v, keys + view.key_offset, view.qkv_row, key_tile * T::kTile, s.seq,
                        s.head_dim);
    __syncthreads();
    Scores<kHeadDim> scores, p, d_p;
    tile_dot<kHeadDim>(scores, q, k);
    tile_dot<kHeadDim>(d_p, d_o, v);
    probabilities<kHeadDim, true>(p, scores, row_lse, first, key_tile * T::kTile, s.seq, scale);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j)
        d_s[(ty * T::kPerThread + i) * T::kScoreStride + tx + kGrid * j] =
            p[i][j] * (d_p[i][j] - row_d[i]) * scale;
    __syncthreads();
    accumulate_product<kHeadDim>(acc, d_s, k);
  }

  float ones[T::kPerThread];
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    ones[i] = 1.0f;
    const int row = first + ty * T::kPerThread + i;
    if (tx == 0 && row < s.seq) d_rowsum[view.row_value + row] = row_d[i];
  }
  store_rows<kHeadDim>(d_qkv + view.q, view.qkv_row, first, s.seq, s.head_dim, acc, ones);
}

template <int kHeadDim>
int key_kernel_shared_bytes() {
  using T = Tiles<kHeadDim>;
  return static_cast<int>((4 * T::kMatrix + 2 * T::kScores) * sizeof(float));
}

/// Per (batch, head, key tile): dK and dV of its keys, from the query tiles at or below it.
/// Scores are held transposed (keys are tile_dot's first operand).
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    attention_key_gradient_kernel(float* d_qkv, const float* d_rowsum, const float* d_out,
                                  const float* qkv, const float* lse, AttentionShape s,
                                  float scale) {
  using T = Tiles<kHeadDim>;
  extern __shared__ float shared[];
  float* k = shared;
  float* v = k + T::kMatrix;
  float* q = v + T::kMatrix;
  float* d_o = q + T::kMatrix;
  float* p_t = d_o + T::kMatrix;    // P^T of this query tile, [kTile keys, kTile queries]
  float* d_s_t = p_t + T::kScores;  // dS^T likewise
  const int tile = static_cast<int>(blockIdx.x);  // key tile; the lowest tiles have the most work
  const int first = tile * T::kTile;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const HeadView view = head_view(s, blockIdx.z, blockIdx.y);
  const float* keys = qkv + view.q + view.key_offset;
  load_tile<kHeadDim>(k, keys, view.qkv_row, first, s.seq, s.head_dim);
  load_tile<kHeadDim>(v, keys + view.key_offset, view.qkv_row, first, s.seq, s.head_dim);

  float d_k[T::kPerThread][T::kDimsPerThread] = {};
  float d_v[T::kPerThread][T::kDimsPerThread] = {};
  for (int query_tile = tile; query_tile < static_cast<int>(gridDim.x); ++query_tile) {
    const int first_query = query_tile * T::kTile;
    __syncthreads();  // the previous tile's q, d_o, p_t and d_s_t are no longer read
    load_tile<kHeadDim>(q, qkv + view.q, view.qkv_row, first_query, s.seq, s.head_dim);
    load_tile<kHeadDim>(d_o, d_out + view.out, view.out_row, first_query, s.seq, s.head_dim);
    __syncthreads();
    float query_lse[T::kPerThread], query_d[T::kPerThread];
    load_row_values<kHeadDim>(query_lse, lse + view.row_value, first_query, s.seq, false);
    load_row_values<kHeadDim>(query_d, d_rowsum + view.row_value, first_query, s.seq, false);
    Scores<kHeadDim> scores_t, p, d_p_t;
    tile_dot<kHeadDim>(scores_t, k, q);
    tile_dot<kHeadDim>(d_p_t, v, d_o);
    probabilities<kHeadDim, false>(p, scores_t, query_lse, first_query, first, s.seq, scale);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) {
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j) {
        const int at = (ty * T::kPerThread + i) * T::kScoreStride + tx + kGrid * j;
        p_t[at] = p[i][j];
        d_s_t[at] = p[i][j] * (d_p_t[i][j] - query_d[j]) * scale;
      }
    }
    __syncthreads();
    accumulate_product<kHeadDim>(d_v, p_t, d_o);
    accumulate_product<kHeadDim>(d_k, d_s_t, q);
  }

  float ones[T::kPerThread];
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) ones[i] = 1.0f;
  store_rows<kHeadDim>(d_qkv + view.q + view.key_offset, view.qkv_row, first, s.seq, s.head_dim,
                       d_k, ones);
  store_rows<kHeadDim>(d_qkv + view.q + 2 * view.key_offset, view.qkv_row, first, s.seq, s.head_dim,
                       d_v, ones);
}

}  // namespace

void CudaBackend::attention_backward(float* d_qkv, const float* d_out, const float* qkv,
                                     const float* out, const float* state,
                                     const AttentionShape& shape) {
  if (shape.batch == 0 || shape.n_heads == 0 || shape.seq == 0) return;
  if (attention_backward_cudnn(d_qkv, d_out, qkv, out, state, shape)) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  float* d_rowsum = static_cast<float*>(scratch(attention_state_count(shape) * sizeof(float)));
  if (lt_ != nullptr) {  // bf16 precision: tensor cores (attention_bf16.cu)
    attention_backward_bf16(d_qkv, d_rowsum, d_out, qkv, out, state, shape, stream_);
    check_launch();
    return;
  }
  with_head_dim_bucket(shape.head_dim, [&](auto bucket) {
    constexpr int kHeadDim = decltype(bucket)::value;
    const dim3 grid(tile_count(shape.seq, Tiles<kHeadDim>::kTile), shape.n_heads, shape.batch);
    const int query_bytes = query_kernel_shared_bytes<kHeadDim>();
    allow_shared_memory(attention_query_gradient_kernel<kHeadDim>, query_bytes);
    attention_query_gradient_kernel<kHeadDim><<<grid, kThreads, query_bytes, stream_>>>(
        d_qkv, d_rowsum, d_out, qkv, out, state, shape, scale);
    check_launch();
    const int key_bytes = key_kernel_shared_bytes<kHeadDim>();
    allow_shared_memory(attention_key_gradient_kernel<kHeadDim>, key_bytes);
    attention_key_gradient_kernel<kHeadDim>
        <<<grid, kThreads, key_bytes, stream_>>>(d_qkv, d_rowsum, d_out, qkv, state, shape, scale);
    check_launch();
  });
}

}  // namespace tessera::cuda
