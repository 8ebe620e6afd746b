// The fused attention kernels of attention.cu / attention_backward.cu with their tile products on
// bf16 tensor cores, for the backend's bf16 precision (fp32 keeps the CUDA-core kernels).
//
// Same algorithm, tiles and thread grid (flash_attention.cuh); what changes is where the products
// run. Q, K, V and dO tiles are rounded to bf16 (nearest even) as they enter shared memory, and so
// are the P and dS tiles before they are multiplied. Each warp computes 16 x 16 blocks of a product
// with nvcuda::wmma bf16 16x16x16 fragments, accumulating in fp32 (a product of two bf16 values is
// exact in fp32, so each block is an fp32 GEMM of the rounded operands). Softmax statistics, D and
// the scaling stay in fp32 on the thread grid, which reads the score blocks back from shared
// memory. The forward's output accumulator is rescaled per row, so P V lands in shared memory and
// is added to the thread grid's registers; dQ, dK and dV stay in the warps' fragments for the whole
// sweep. sm_80 and later.
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/flash_attention.cuh"

namespace tessera::cuda {
namespace {

using namespace flash;
namespace wmma = nvcuda::wmma;
using bf16 = __nv_bfloat16;

inline constexpr int kWarps = kThreads / 32;
inline constexpr int kBlock = 16;  ///< side of a wmma fragment

/// Shared-memory geometry of the tensor-core kernels: row strides are multiples of 8 bf16 / 4
/// floats (16 bytes, wmma's ldm rule) and every array a multiple of 32 bytes (its alignment).
template <int kHeadDim>
struct MmaTiles {
  static constexpr int kTile = Tiles<kHeadDim>::kTile;
  static constexpr int kStride = kHeadDim + 8;    ///< bf16 row stride of a [kTile, head] tile
  static constexpr int kScoreStride = kTile + 8;  ///< bf16 row stride of a [kTile, kTile] tile
  static constexpr int kFloatStride =             ///< fp32 row stride: scores or a product
      (kTile > kHeadDim ? kTile : kHeadDim) + 4;
  static constexpr int kMatrix = kTile * kStride;       ///< bf16 elements of a [kTile, head] tile
  static constexpr int kScores = kTile * kScoreStride;  ///< bf16 elements of a score tile
  static constexpr int kFloats = kTile * kFloatStride;  ///< floats of an fp32 tile
};

/// tile[r, d] = bf16(matrix[(first + r) * row_stride + d]); rows past seq and columns past
/// head_dim are zero.
template <int kHeadDim>
__device__ inline void load_tile_bf16(bf16* tile, const float* matrix, long long row_stride,
                                      int first, int seq, int head_dim) {
  using M = MmaTiles<kHeadDim>;
  for (int e = threadIdx.x; e < M::kTile * kHeadDim; e += kThreads) {
    const int r = e / kHeadDim, d = e % kHeadDim, row = first + r;
    const float value = row < seq && d < head_dim ? matrix[row * row_stride + d] : 0.0f;
    tile[r * M::kStride + d] = __float2bfloat16(value);
  }
}

/// Rows first + r (below seq), columns below head_dim, of an fp32 [kTile, head] tile to matrix.
template <int kHeadDim>
__device__ inline void store_tile(float* matrix, long long row_stride, int first, int seq,
                                  int head_dim, const float* tile) {
  using M = MmaTiles<kHeadDim>;
  for (int e = threadIdx.x; e < M::kTile * kHeadDim; e += kThreads) {
    const int r = e / kHeadDim, d = e % kHeadDim, row = first + r;
    if (row < seq && d < head_dim) matrix[row * row_stride + d] = tile[r * M::kFloatStride + d];
  }
}

/// B operand layouts: kTransposed reads B[k, n] at b[n * ldb + k] (b holds the rows of B^T, e.g.
/// K for Q K^T), else at b[k * ldb + n].
template <bool kTransposed>
using BLayout = std::conditional_t<kTransposed, wmma::col_major, wmma::row_major>;
using Accumulator = wmma::fragment<wmma::accumulator, kBlock, kBlock, kBlock, float>;

/// acc += A[row.., 0..kDepth) B[0..kDepth, col..] for one 16 x 16 block; A row-major.
template <int kDepth, bool kTransposed>
__device__ inline void multiply_block(Accumulator& acc, const bf16* a, int lda, const bf16* b,
                                      int ldb, int row, int col) {
  wmma::fragment<wmma::matrix_a, kBlock, kBlock, kBlock, bf16, wmma::row_major> a_block;
  wmma::fragment<wmma::matrix_b, kBlock, kBlock, kBlock, bf16, BLayout<kTransposed>> b_block;
#pragma unroll
  for (int k = 0; k < kDepth; k += kBlock) {
    wmma::load_matrix_sync(a_block, a + row * lda + k, lda);
    wmma::load_matrix_sync(b_block, kTransposed ? b + col * ldb + k : b + k * ldb + col, ldb);
    wmma::mma_sync(acc, a_block, b_block, acc);
  }
}

/// c = A B, c fp32 [kRows, kCols] row-major (ldc) in shared memory; warp w computes the 16 x 16
/// blocks w, w + kWarps, ...
template <int kRows, int kCols, int kDepth, bool kTransposed>
__device__ inline void multiply_to_shared(float* c, int ldc, const bf16* a, int lda, const bf16* b,
                                          int ldb) {
  constexpr int kBlockCols = kCols / kBlock;
  for (int block = threadIdx.x / 32; block < kRows / kBlock * kBlockCols; block += kWarps) {
    const int row = block / kBlockCols * kBlock, col = block % kBlockCols * kBlock;
    Accumulator acc;
    wmma::fill_fragment(acc, 0.0f);
    multiply_block<kDepth, kTransposed>(acc, a, lda, b, ldb, row, col);
    wmma::store_matrix_sync(c + row * ldc + col, acc, ldc, wmma::mem_row_major);
  }
}

/// An fp32 [kRows, kCols] sum held in the warps' fragments (warp w: blocks w, w + kWarps, ...).
template <int kRows, int kCols>
struct WarpSum {
  static constexpr int kBlockCols = kCols / kBlock;
  static constexpr int kBlocks = kRows / kBlock * kBlockCols;
  static_assert(kBlocks % kWarps == 0, "every warp holds the same number of blocks");
  Accumulator blocks[kBlocks / kWarps];

  __device__ void zero() {
#pragma unroll
    for (auto& block : blocks) wmma::fill_fragment(block, 0.0f);
  }
  /// += A B, A [kRows, kDepth] row-major, B [kDepth, kCols] row-major.
  template <int kDepth>
  __device__ void add_product(const bf16* a, int lda, const bf16* b, int ldb) {
#pragma unroll
    for (int n = 0; n < kBlocks / kWarps; ++n) {
      const int block = static_cast<int>(threadIdx.x / 32) + kWarps * n;
      multiply_block<kDepth, false>(blocks[n], a, lda, b, ldb, block / kBlockCols * kBlock,
                                    block % kBlockCols * kBlock);
    }
  }
  __device__ void store(float* c, int ldc) const {
#pragma unroll
    for (int n = 0; n < kBlocks / kWarps; ++n) {
      const int block = static_cast<int>(threadIdx.x / 32) + kWarps * n;
      wmma::store_matrix_sync(c + block / kBlockCols * kBlock * ldc + block % kBlockCols * kBlock,
                              blocks[n], ldc, wmma::mem_row_major);
    }
  }
};

/// The thread grid's entries of an fp32 [kTile, kTile] tile: rows ty * kPerThread + i, columns
/// tx + 16 j (tile_dot's layout).
template <int kHeadDim>
__device__ inline void read_scores(Scores<kHeadDim>& values, const float* tile) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
    for (int j = 0; j < T::kPerThread; ++j)
      values[i][j] =
          tile[(ty * T::kPerThread + i) * MmaTiles<kHeadDim>::kFloatStride + tx + kGrid * j];
}

template <int kHeadDim>
int forward_shared_bytes() {
  using M = MmaTiles<kHeadDim>;
  return static_cast<int>((3 * M::kMatrix + M::kScores) * sizeof(bf16) +
                          M::kFloats * sizeof(float));
}

template <int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    attention_forward_bf16_kernel(float* out, float* lse, const float* qkv, AttentionShape s,
                                  float scale) {
  using T = Tiles<kHeadDim>;
  using M = MmaTiles<kHeadDim>;
  extern __shared__ __align__(128) unsigned char shared[];
  bf16* q = reinterpret_cast<bf16*>(shared);
  bf16* k = q + M::kMatrix;
  bf16* v = k + M::kMatrix;
  bf16* p = v + M::kMatrix;                                       // e^(S - m'), [kTile, kTile]
  float* product = reinterpret_cast<float*>(p + M::kScores);      // S, then P V
  const int tile = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // the longest rows first
  const int first = tile * T::kTile;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const HeadView view = head_view(s, blockIdx.z, blockIdx.y);
  const float* keys = qkv + view.q + view.key_offset;
  load_tile_bf16<kHeadDim>(q, qkv + view.q, view.qkv_row, first, s.seq, s.head_dim);

  float acc[T::kPerThread][T::kDimsPerThread] = {};
  float row_max[T::kPerThread], row_sum[T::kPerThread];
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    row_max[i] = -INFINITY;
    row_sum[i] = 0.0f;
  }
  for (int key_tile = 0; key_tile <= tile; ++key_tile) {
    const int first_key = key_tile * T::kTile;
    __syncthreads();  // the previous tile's k, v, p and product are no longer read
    load_tile_bf16<kHeadDim>(k, keys, view.qkv_row, first_key, s.seq, s.head_dim);
    load_tile_bf16<kHeadDim>(v, keys + view.key_offset, view.qkv_row, first_key, s.seq, s.head_dim);
    __syncthreads();
    multiply_to_shared<T::kTile, T::kTile, kHeadDim, true>(product, M::kFloatStride, q, M::kStride,
                                                           k, M::kStride);
    __syncthreads();
    Scores<kHeadDim> scores;
    read_scores<kHeadDim>(scores, product);
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
      // As in attention.cu: every visited tile holds an unmasked key of every row.
      const float new_max = fmaxf(row_max[i], row_group_max(tile_max));
      const float rescale = expf(row_max[i] - new_max);
      float tile_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j) {
        const float e = expf(scores[i][j] - new_max);
        p[(ty * T::kPerThread + i) * M::kScoreStride + tx + kGrid * j] = __float2bfloat16(e);
        tile_sum += e;
      }
      row_sum[i] = row_sum[i] * rescale + row_group_sum(tile_sum);
      row_max[i] = new_max;
#pragma unroll
      for (int c = 0; c < T::kDimsPerThread; ++c) acc[i][c] *= rescale;
    }
    __syncthreads();  // p is written, the scores in product are read
    multiply_to_shared<T::kTile, kHeadDim, T::kTile, false>(product, M::kFloatStride, p,
                                                            M::kScoreStride, v, M::kStride);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
      for (int c = 0; c < T::kDimsPerThread; ++c)
        acc[i][c] += product[(ty * T::kPerThread + i) * M::kFloatStride + tx + kGrid * c];
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

/// D = rowsum(bf16(dO) * O) in fp32 for the thread's rows ty * kPerThread + i, straight from the
/// fp32 buffers (row stride row_stride); every thread of a thread-grid row gets the whole sum. dO
/// is rounded as in dP = bf16(dO) bf16(V)^T, so that dP - D cancels as it does in exact
/// arithmetic: with one key (P = 1, O = bf16(V)) dS is zero up to fp32 summation order, not
/// u |dO| |V| (measured: dQ, dK of 1e-3 where the fp32 result is 0).
template <int kHeadDim>
__device__ inline void output_rowsums(float (&row_d)[Tiles<kHeadDim>::kPerThread],
                                      const float* d_out, const float* out, long long row_stride,
                                      int first, int seq, int head_dim) {
  using T = Tiles<kHeadDim>;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    const int row = first + ty * T::kPerThread + i;
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < T::kDimsPerThread; ++c) {
      const int d = tx + kGrid * c;
      if (row < seq && d < head_dim)
        sum = fmaf(__bfloat162float(__float2bfloat16(d_out[row * row_stride + d])),
                   out[row * row_stride + d], sum);
    }
    row_d[i] = row_group_sum(sum);
  }
}

template <int kHeadDim>
int query_kernel_shared_bytes() {
  using M = MmaTiles<kHeadDim>;
  return static_cast<int>((4 * M::kMatrix + M::kScores) * sizeof(bf16) +
                          2 * M::kFloats * sizeof(float));
}

/// Per (batch, head, query tile): D of its rows (into d_rowsum) and dQ = dS K.
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    attention_query_gradient_bf16_kernel(float* d_qkv, float* d_rowsum, const float* d_out,
                                         const float* qkv, const float* out, const float* lse,
                                         AttentionShape s, float scale) {
  using T = Tiles<kHeadDim>;
  using M = MmaTiles<kHeadDim>;
  extern __shared__ __align__(128) unsigned char shared[];
  bf16* q = reinterpret_cast<bf16*>(shared);
  bf16* d_o = q + M::kMatrix;
  bf16* k = d_o + M::kMatrix;
  bf16* v = k + M::kMatrix;
  bf16* d_s = v + M::kMatrix;                                     // [kTile, kTile]
  float* scores = reinterpret_cast<float*>(d_s + M::kScores);     // S, at the end dQ
  float* d_p = scores + M::kFloats;                               // dP = dO V^T
  const int tile = static_cast<int>(gridDim.x - 1 - blockIdx.x);  // the longest rows first
  const int first = tile * T::kTile;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const HeadView view = head_view(s, blockIdx.z, blockIdx.y);
  const float* keys = qkv + view.q + view.key_offset;
  load_tile_bf16<kHeadDim>(q, qkv + view.q, view.qkv_row, first, s.seq, s.head_dim);
  load_tile_bf16<kHeadDim>(d_o, d_out + view.out, view.out_row, first, s.seq, s.head_dim);
  float row_lse[T::kPerThread], row_d[T::kPerThread];
  load_row_values<kHeadDim>(row_lse, lse + view.row_value, first, s.seq, /*by_ty=*/true);
  output_rowsums<kHeadDim>(row_d, d_out + view.out, out + view.out, view.out_row, first, s.seq,
                           s.head_dim);

  WarpSum<T::kTile, kHeadDim> d_q;
  d_q.zero();
  for (int key_tile = 0; key_tile <= tile; ++key_tile) {
    __syncthreads();  // the previous tile's k, v, d_s, scores and d_p are no longer read
    load_tile_bf16<kHeadDim>(k, keys, view.qkv_row, key_tile * T::kTile, s.seq, s.head_dim);
    load_tile_bf16<kHeadDim>(v, keys + view.key_offset, view.qkv_row, key_tile * T::kTile, s.seq,
                             s.head_dim);
    __syncthreads();
    multiply_to_shared<T::kTile, T::kTile, kHeadDim, true>(scores, M::kFloatStride, q, M::kStride,
                                                           k, M::kStride);
    multiply_to_shared<T::kTile, T::kTile, kHeadDim, true>(d_p, M::kFloatStride, d_o, M::kStride, v,
                                                           M::kStride);
    __syncthreads();
    Scores<kHeadDim> s_values, p, d_p_values;
    read_scores<kHeadDim>(s_values, scores);
    read_scores<kHeadDim>(d_p_values, d_p);
    probabilities<kHeadDim, true>(p, s_values, row_lse, first, key_tile * T::kTile, s.seq, scale);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i)
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j)
        d_s[(ty * T::kPerThread + i) * M::kScoreStride + tx + kGrid * j] =
            __float2bfloat16(p[i][j] * (d_p_values[i][j] - row_d[i]) * scale);
    __syncthreads();
    d_q.template add_product<T::kTile>(d_s, M::kScoreStride, k, M::kStride);
  }

  __syncthreads();  // scores is no longer read
  d_q.store(scores, M::kFloatStride);
#pragma unroll
  for (int i = 0; i < T::kPerThread; ++i) {
    const int row = first + ty * T::kPerThread + i;
    if (tx == 0 && row < s.seq) d_rowsum[view.row_value + row] = row_d[i];
  }
  __syncthreads();
  store_tile<kHeadDim>(d_qkv + view.q, view.qkv_row, first, s.seq, s.head_dim, scores);
}

template <int kHeadDim>
int key_kernel_shared_bytes() {
  using M = MmaTiles<kHeadDim>;
  return static_cast<int>((4 * M::kMatrix + 2 * M::kScores) * sizeof(bf16) +
                          2 * M::kFloats * sizeof(float));
}

/// Per (batch, head, key tile): dK = dS^T Q and dV = P^T dO over the query tiles at or below it.
/// Scores are held transposed (keys are the rows).
template <int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    attention_key_gradient_bf16_kernel(float* d_qkv, const float* d_rowsum, const float* d_out,
                                       const float* qkv, const float* lse, AttentionShape s,
                                       float scale) {
  using T = Tiles<kHeadDim>;
  using M = MmaTiles<kHeadDim>;
  extern __shared__ __align__(128) unsigned char shared[];
  bf16* k = reinterpret_cast<bf16*>(shared);
  bf16* v = k + M::kMatrix;
  bf16* q = v + M::kMatrix;
  bf16* d_o = q + M::kMatrix;
  bf16* p_t = d_o + M::kMatrix;  // P^T of this query tile, [kTile keys, kTile queries]
  bf16* d_s_t = p_t + M::kScores;
  float* scores_t = reinterpret_cast<float*>(d_s_t + M::kScores);  // S^T, at the end dK
  float* d_p_t = scores_t + M::kFloats;                            // dP^T, at the end dV
  const int tile = static_cast<int>(blockIdx.x);  // key tile; the lowest tiles have the most work
  const int first = tile * T::kTile;
  const int ty = threadIdx.x / kGrid, tx = threadIdx.x % kGrid;
  const HeadView view = head_view(s, blockIdx.z, blockIdx.y);
  const float* keys = qkv + view.q + view.key_offset;
  load_tile_bf16<kHeadDim>(k, keys, view.qkv_row, first, s.seq, s.head_dim);
  load_tile_bf16<kHeadDim>(v, keys + view.key_offset, view.qkv_row, first, s.seq, s.head_dim);

  WarpSum<T::kTile, kHeadDim> d_k, d_v;
  d_k.zero();
  d_v.zero();
  for (int query_tile = tile; query_tile < static_cast<int>(gridDim.x); ++query_tile) {
    const int first_query = query_tile * T::kTile;
    __syncthreads();  // the previous tile's q, d_o, p_t, d_s_t and fp32 tiles are no longer read
    load_tile_bf16<kHeadDim>(q, qkv + view.q, view.qkv_row, first_query, s.seq, s.head_dim);
    load_tile_bf16<kHeadDim>(d_o, d_out + view.out, view.out_row, first_query, s.seq, s.head_dim);
    __syncthreads();
    multiply_to_shared<T::kTile, T::kTile, kHeadDim, true>(scores_t, M::kFloatStride, k, M::kStride,
                                                           q, M::kStride);
    multiply_to_shared<T::kTile, T::kTile, kHeadDim, true>(d_p_t, M::kFloatStride, v, M::kStride,
                                                           d_o, M::kStride);
    float query_lse[T::kPerThread], query_d[T::kPerThread];
    load_row_values<kHeadDim>(query_lse, lse + view.row_value, first_query, s.seq, false);
    load_row_values<kHeadDim>(query_d, d_rowsum + view.row_value, first_query, s.seq, false);
    __syncthreads();
    Scores<kHeadDim> s_values, p, d_p_values;
    read_scores<kHeadDim>(s_values, scores_t);
    read_scores<kHeadDim>(d_p_values, d_p_t);
    probabilities<kHeadDim, false>(p, s_values, query_lse, first_query, first, s.seq, scale);
#pragma unroll
    for (int i = 0; i < T::kPerThread; ++i) {
#pragma unroll
      for (int j = 0; j < T::kPerThread; ++j) {
        const int at = (ty * T::kPerThread + i) * M::kScoreStride + tx + kGrid * j;
        p_t[at] = __float2bfloat16(p[i][j]);
        d_s_t[at] = __float2bfloat16(p[i][j] * (d_p_values[i][j] - query_d[j]) * scale);
      }
    }
    __syncthreads();
    d_v.template add_product<T::kTile>(p_t, M::kScoreStride, d_o, M::kStride);
    d_k.template add_product<T::kTile>(d_s_t, M::kScoreStride, q, M::kStride);
  }

  __syncthreads();  // scores_t and d_p_t are no longer read
  d_k.store(scores_t, M::kFloatStride);
  d_v.store(d_p_t, M::kFloatStride);
  __syncthreads();
  store_tile<kHeadDim>(d_qkv + view.q + view.key_offset, view.qkv_row, first, s.seq, s.head_dim,
                       scores_t);
  store_tile<kHeadDim>(d_qkv + view.q + 2 * view.key_offset, view.qkv_row, first, s.seq, s.head_dim,
                       d_p_t);
}

}  // namespace

void attention_forward_bf16(float* out, float* lse, const float* qkv, const AttentionShape& shape,
                            cudaStream_t stream) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  with_head_dim_bucket(shape.head_dim, [&](auto bucket) {
    constexpr int kHeadDim = decltype(bucket)::value;
    const int bytes = forward_shared_bytes<kHeadDim>();
    allow_shared_memory(attention_forward_bf16_kernel<kHeadDim>, bytes);
    const dim3 grid(tile_count(shape.seq, Tiles<kHeadDim>::kTile), shape.n_heads, shape.batch);
    attention_forward_bf16_kernel<kHeadDim>
        <<<grid, kThreads, bytes, stream>>>(out, lse, qkv, shape, scale);
  });
}

void attention_backward_bf16(float* d_qkv, float* d_rowsum, const float* d_out, const float* qkv,
                             const float* out, const float* lse, const AttentionShape& shape,
                             cudaStream_t stream) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  with_head_dim_bucket(shape.head_dim, [&](auto bucket) {
    constexpr int kHeadDim = decltype(bucket)::value;
    const dim3 grid(tile_count(shape.seq, Tiles<kHeadDim>::kTile), shape.n_heads, shape.batch);
    const int query_bytes = query_kernel_shared_bytes<kHeadDim>();
    allow_shared_memory(attention_query_gradient_bf16_kernel<kHeadDim>, query_bytes);
    attention_query_gradient_bf16_kernel<kHeadDim><<<grid, kThreads, query_bytes, stream>>>(
        d_qkv, d_rowsum, d_out, qkv, out, lse, shape, scale);
    TESSERA_CUDA_CHECK(cudaGetLastError());
    const int key_bytes = key_kernel_shared_bytes<kHeadDim>();
    allow_shared_memory(attention_key_gradient_bf16_kernel<kHeadDim>, key_bytes);
    attention_key_gradient_bf16_kernel<kHeadDim>
        <<<grid, kThreads, key_bytes, stream>>>(d_qkv, d_rowsum, d_out, qkv, lse, shape, scale);
  });
}

}  // namespace tessera::cuda
