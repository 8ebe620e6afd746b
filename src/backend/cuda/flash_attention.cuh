// Tiles shared by the fused attention kernels (attention.cu, attention_backward.cu). Private to
// src/backend/cuda.
//
// A block of kThreads threads works on square tiles of kTile query rows by kTile keys of one
// (batch, head). Its threads form a 16 x 16 grid (ty, tx): thread (ty, tx) owns rows
// ty * kPerThread + i of the tile's first operand and rows tx + 16 j of its second, so that
// within a warp the first operand's reads are broadcasts and the second's fall in distinct banks
// (tiles are stored with one float of padding per row). Head dims are padded with zeros up to the
// kernel's bucket (32, 64 or 128); fp32 loads, products and accumulation throughout.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "backend/backend.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "core/error.hpp"

namespace tessera::cuda::flash {

inline constexpr int kThreads = 256;
inline constexpr int kGrid = 16;  ///< threads per side of the thread grid

/// Tile geometry of the kernels for head dims up to kHeadDim.
template <int kHeadDim>
struct Tiles {
  static_assert(kHeadDim % kGrid == 0, "the head-dim bucket must be a multiple of 16");
  /// Query rows of a query tile = keys of a key tile. 32 at head_dim 128 keeps the backward
  /// pass's four [kTile, kHeadDim] tiles and two score tiles under 100 KB of shared memory.
  static constexpr int kTile = kHeadDim <= 64 ? 64 : 32;
  static constexpr int kPerThread = kTile / kGrid;         ///< score rows (and columns) per thread
  static constexpr int kDimsPerThread = kHeadDim / kGrid;  ///< head-dim columns per thread
  static constexpr int kStride = kHeadDim + 1;             ///< row stride of a [kTile, head] tile
  static constexpr int kScoreStride = kTile + 1;           ///< row stride of a [kTile, kTile] tile
  static constexpr int kMatrix = kTile * kStride;          ///< floats of a [kTile, head] tile
  static constexpr int kScores = kTile * kScoreStride;     ///< floats of a [kTile, kTile] tile
};

/// Where one (batch, head) lives in the packed buffers: qkv [batch, seq, 3, heads, head_dim],
/// out [batch, seq, heads, head_dim], and per-row values (log-sum-exp, D) [batch, heads, seq].
struct HeadView {
  long long qkv_row = 0;  ///< floats between consecutive tokens of qkv
  long long out_row = 0;  ///< floats between consecutive tokens of out
  long long q = 0;        ///< offset of this head's query row 0 in qkv (+ key_offset: keys, ...)
  long long key_offset = 0;
  long long out = 0;        ///< offset of this head's row 0 in out
  long long row_value = 0;  ///< offset of this head's row 0 in the per-row arrays
};

__device__ inline HeadView head_view(const AttentionShape& s, int batch, int head) {
  HeadView v;
  const long long width = static_cast<long long>(s.n_heads) * s.head_dim;
  v.qkv_row = 3 * width;
  v.out_row = width;
  v.q =
      batch * static_cast<long long>(s.seq) * v.qkv_row + static_cast<long long>(head) * s.head_dim;
  v.key_offset = width;
  v.out = batch * static_cast<long long>(s.seq) * width + static_cast<long long>(head) * s.head_dim;
  v.row_value = (static_cast<long long>(batch) * s.n_heads + head) * s.seq;
  return v;
}

/// tile[r, d] = matrix[(first + r) * row_stride + d]; rows past seq and columns past head_dim read
/// as zero.
template <int kHeadDim>
__device__ inline void load_tile(float* tile, const float* matrix, long long row_stride, int first,
                                 int seq, int head_dim) {
  using T = Tiles<kHeadDim>;
  for (int e = threadIdx.x; e < T::kTile * kHeadDim; e += kThreads) {
    const int r = e / kHeadDim, d = e % kHeadDim, row = first + r;
    tile[r * T::kStride + d] = row < seq && d < head_dim ? matrix[row * row_stride + d] : 0.0f;
  }
}

/// acc[i][j] = sum_d a[ty * kPerThread + i, d] * b[tx + 16 j, d] over two tiles in shared memory.
template <int kHeadDim>
__device__ inline void tile_dot(
    float (&acc)[Tiles<kHeadDim>::kPerThread][Tiles<kHeadDim>::kPerThread], const float* a,
    const float* b) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
    for (int j = 0; j < T::kPerThread; ++j) acc[i][j] = 0.0f;
  const float* a_rows = a + ty * T::kPerThread * T::kStride;
  const float* b_rows = b + tx * T::kStride;
#pragma unroll 8
  for (int d = 0; d < kHeadDim; ++d) {
    float a_values[T::kPerThread], b_values[T::kPerThread];
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) a_values[i] = a_rows[i * T::kStride + d];
#pragma unroll
    for (int j = 0; j < T::kPerThread; ++j) b_values[j] = b_rows[j * kGrid * T::kStride + d];
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j) acc[i][j] = fmaf(a_values[i], b_values[j], acc[i][j]);
  }
}

/// acc[i][k] += sum_c scores[ty * kPerThread + i, c] * matrix[c, tx + 16 k]: a [kTile, kTile]
/// score tile times a [kTile, head] tile, into the head-dim columns this thread owns.
template <int kHeadDim>
__device__ inline void accumulate_product(
    float (&acc)[Tiles<kHeadDim>::kPerThread][Tiles<kHeadDim>::kDimsPerThread], const float* scores,
    const float* matrix) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const float* score_rows = scores + ty * T::kPerThread * T::kScoreStride;
#pragma unroll 4
  for (int c = 0; c < T::kTile; ++c) {
    float weights[T::kPerThread], values[T::kDimsPerThread];
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) weights[i] = score_rows[i * T::kScoreStride + c];
#pragma unroll
    for (int k = 0; k < T::kDimsPerThread; ++k) values[k] = matrix[c * T::kStride + tx + kGrid * k];
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
      for (int k = 0; k < T::kDimsPerThread; ++k)
        acc[i][k] = fmaf(weights[i], values[k], acc[i][k]);
  }
}

/// Writes rows first + ty * kPerThread + i (those below seq) of a thread's accumulator, columns
/// below head_dim, to matrix (row stride row_stride), times factor[i].
template <int kHeadDim>
__device__ inline void store_rows(
    float* matrix, long long row_stride, int first, int seq, int head_dim,
    const float (&acc)[Tiles<kHeadDim>::kPerThread][Tiles<kHeadDim>::kDimsPerThread],
    const float (&factor)[Tiles<kHeadDim>::kPerThread]) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    const int row = first + ty * T::kPerThread + i;
    if (row >= seq) continue;
#pragma unroll
    for (int k = 0; k < T::kDimsPerThread; ++k) {
      const int d = tx + kGrid * k;
      if (d < head_dim) matrix[row * row_stride + d] = acc[i][k] * factor[i];
    }
  }
}

template <int kHeadDim>
using Scores = float[Tiles<kHeadDim>::kPerThread][Tiles<kHeadDim>::kPerThread];

/// p[i][j] = e^(scores[i][j] * scale - lse[i]) where key <= query and the query is below seq,
/// else 0, for the rows and keys of the thread's score entries (`kQueryRowsFirst`: rows are the
/// first operand of tile_dot, keys the second; else the reverse).
template <int kHeadDim, bool kQueryRowsFirst>
__device__ inline void probabilities(Scores<kHeadDim>& p, const Scores<kHeadDim>& scores,
                                     const float (&lse)[Tiles<kHeadDim>::kPerThread],
                                     int first_query, int first_key, int seq, float scale) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
#pragma unroll
    for (int j = 0; j < T::kPerThread; ++j) {
      const int query =
          kQueryRowsFirst ? first_query + ty * T::kPerThread + i : first_query + tx + kGrid * j;
      const int key =
          kQueryRowsFirst ? first_key + tx + kGrid * j : first_key + ty * T::kPerThread + i;
      const float row_lse = kQueryRowsFirst ? lse[i] : lse[j];
      p[i][j] = key <= query && query < seq ? expf(scores[i][j] * scale - row_lse) : 0.0f;
    }
  }
}

/// values[n] = per_row[first + offset(n)] for rows below seq, else 0.
template <int kHeadDim>
__device__ inline void load_row_values(float (&values)[Tiles<kHeadDim>::kPerThread],
                                       const float* per_row, int first, int seq, bool by_ty) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int n = 0; n < T::kPerThread; ++n) {
    const int row = first + (by_ty ? ty * T::kPerThread + n : tx + kGrid * n);
    values[n] = row < seq ? per_row[row] : 0.0f;
  }
}

/// Max / sum over the 16 threads of a thread-grid row (one half of a warp).
__device__ inline float row_group_max(float value) {
  for (int offset = kGrid / 2; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}
__device__ inline float row_group_sum(float value) {
  for (int offset = kGrid / 2; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

/// The largest head_dim the kernels are built for; io/config refuses larger ones up front.
inline constexpr int kMaxHeadDim = 128;

/// Calls launch(std::integral_constant<int, kHeadDim>{}) with the smallest bucket (32, 64, 128)
/// that holds head_dim; refuses larger head dims.
template <typename Launch>
void with_head_dim_bucket(int head_dim, Launch&& launch) {
  TESSERA_CHECK(head_dim >= 1 && head_dim <= kMaxHeadDim,
                "the CUDA backend's fused attention supports head_dim 1 to " +
                    std::to_string(kMaxHeadDim) + " (got " + std::to_string(head_dim) +
                    "); use more heads (head_dim = d_model / n_heads)");
  if (head_dim <= 32) {
    launch(std::integral_constant<int, 32>{});
  } else if (head_dim <= 64) {
    launch(std::integral_constant<int, 64>{});
  } else {
    launch(std::integral_constant<int, 128>{});
  }
}

/// Lets `kernel` use `bytes` of dynamic shared memory (above the default 48 KB).
template <typename Kernel>
void allow_shared_memory(Kernel kernel, int bytes) {
  TESSERA_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

/// Query (or key) tiles covering seq.
inline int tile_count(int seq, int tile) { return (seq + tile - 1) / tile; }

}  // namespace tessera::cuda::flash
