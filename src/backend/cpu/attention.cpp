// Causal multi-head attention of the CPU backend. One task per (batch, head): its GEMMs run on
// strided views of the packed qkv buffer (no copies), single-threaded inside the parallel loop,
// block by block so that no GEMM computes scores above the causal diagonal's blocks.
//
// Forward:  S = Q K^T / sqrt(head_dim);  P = causal_softmax(S);  O = P V.
// Backward: dV = P^T dO;  dP = dO V^T;  dS = P * (dP - rowsum(P * dP)) / sqrt(head_dim);
//           dQ = dS K;  dK = dS^T Q.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/vector_math.hpp"
#include "core/error.hpp"

namespace tessera::cpu {
namespace {

/// Pointers and row strides of one (batch, head) slice of qkv / out.
struct HeadView {
  std::size_t q = 0, k = 0, v = 0;  ///< offsets into qkv (and d_qkv) of row 0 of this head
  std::size_t out = 0;              ///< offset into out (and d_out)
  std::size_t probs = 0;            ///< offset into probs of this head's [seq, seq] block
};

HeadView head_view(const AttentionShape& shape, int task) {
  const int b = task / shape.n_heads;
  const int h = task % shape.n_heads;
  const std::size_t hd = static_cast<std::size_t>(shape.head_dim);
  const std::size_t heads = static_cast<std::size_t>(shape.n_heads);
  const std::size_t seq = static_cast<std::size_t>(shape.seq);
  HeadView view;
  view.q = b * seq * 3 * heads * hd + h * hd;
  view.k = view.q + heads * hd;
  view.v = view.k + heads * hd;
  view.out = b * seq * heads * hd + h * hd;
  view.probs = static_cast<std::size_t>(task) * seq * seq;
  return view;
}

/// Rows of queries per block. Causality means query block i needs only keys [0, end of block
/// i), so the GEMMs of every (batch, head) skip the blocks above the diagonal: at seq 256 they
/// do 10/16 of the full seq x seq work, in GEMMs still large enough to run near peak.
constexpr int kQueryBlock = 64;

/// Causal softmax, in place, of rows [first, first + count) of scores[seq, seq], whose row i
/// holds valid scores in columns [0, i]; every other column of those rows is written as 0.
void causal_softmax(float* scores, int seq, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    float* row = scores + static_cast<std::size_t>(i) * seq;
    const float max = row_maximum(row, i + 1);
    const float inv_sum = 1.0f / static_cast<float>(sum_of_exponentials(row, row, max, i + 1));
#pragma omp simd
    for (int j = 0; j <= i; ++j) row[j] *= inv_sum;
    std::fill(row + i + 1, row + seq, 0.0f);
  }
}

/// Rows [first, first + count) of d_probs[seq, seq] become
/// dS = probs * (d_probs - rowsum(probs * d_probs)) * scale in columns [0, i], 0 elsewhere.
void softmax_backward(float* d_probs, const float* probs, int seq, int first, int count,
                      float scale) {
  for (int i = first; i < first + count; ++i) {
    float* d_row = d_probs + static_cast<std::size_t>(i) * seq;
    const float* p_row = probs + static_cast<std::size_t>(i) * seq;
    const float dot = dot_product(p_row, d_row, i + 1);
#pragma omp simd
    for (int j = 0; j <= i; ++j) d_row[j] = p_row[j] * (d_row[j] - dot) * scale;
    std::fill(d_row + i + 1, d_row + seq, 0.0f);
  }
}

/// Few tasks run one after the other so that each GEMM gets every thread instead.
bool parallel_over_heads(const AttentionShape& shape) {
  return shape.batch * shape.n_heads >= omp_get_max_threads();
}

}  // namespace

void CpuBackend::attention_forward(float* out, float* probs, const float* qkv,
                                   const AttentionShape& shape) {
  const int seq = shape.seq;
  const int hd = shape.head_dim;
  const int qkv_stride = 3 * shape.n_heads * hd;
  const int out_stride = shape.n_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int tasks = shape.batch * shape.n_heads;
  int failures = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : failures) if (parallel_over_heads(shape))
  for (int task = 0; task < tasks; ++task) {
    const HeadView view = head_view(shape, task);
    float* scores = probs + view.probs;
    for (int first = 0; first < seq; first += kQueryBlock) {
      const int rows = std::min(kQueryBlock, seq - first), keys = first + rows;
      const std::size_t q_row = static_cast<std::size_t>(first) * qkv_stride;
      float* block_scores = scores + static_cast<std::size_t>(first) * seq;
      failures += !try_sgemm('N', 'T', rows, keys, hd, scale, qkv + view.q + q_row, qkv_stride,
                             qkv + view.k, qkv_stride, 0.0f, block_scores, seq);
      causal_softmax(scores, seq, first, rows);
      failures += !try_sgemm(
          'N', 'N', rows, hd, keys, 1.0f, block_scores, seq, qkv + view.v, qkv_stride, 0.0f,
          out + view.out + static_cast<std::size_t>(first) * out_stride, out_stride);
    }
  }
  TESSERA_CHECK(failures == 0, std::to_string(failures) + " dnnl_sgemm calls failed");
}

void CpuBackend::attention_backward(float* d_qkv, const float* d_out, const float* qkv,
                                    const float* /*out: the probabilities are kept*/,
                                    const float* probs, const AttentionShape& shape) {
  const int seq = shape.seq;
  const int hd = shape.head_dim;
  const int qkv_stride = 3 * shape.n_heads * hd;
  const int out_stride = shape.n_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int tasks = shape.batch * shape.n_heads;
  const std::size_t square = static_cast<std::size_t>(seq) * seq;
  float* d_probs_all = scratch(square * static_cast<std::size_t>(omp_get_max_threads()));
  int failures = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : failures) if (parallel_over_heads(shape))
  for (int task = 0; task < tasks; ++task) {
    const HeadView view = head_view(shape, task);
    const float* p = probs + view.probs;
    const float* d_o = d_out + view.out;
    float* d_probs = d_probs_all + square * static_cast<std::size_t>(omp_get_thread_num());
    // By query block: dP = dO V^T and dS over the keys the block sees, then dQ = dS K.
    for (int first = 0; first < seq; first += kQueryBlock) {
      const int rows = std::min(kQueryBlock, seq - first), keys = first + rows;
      const std::size_t q_row = static_cast<std::size_t>(first) * qkv_stride;
      float* block_d_probs = d_probs + static_cast<std::size_t>(first) * seq;
      failures += !try_sgemm('N', 'T', rows, keys, hd, 1.0f,
                             d_o + static_cast<std::size_t>(first) * out_stride, out_stride,
                             qkv + view.v, qkv_stride, 0.0f, block_d_probs, seq);
      softmax_backward(d_probs, p, seq, first, rows, scale);
      failures += !try_sgemm('N', 'N', rows, hd, keys, 1.0f, block_d_probs, seq, qkv + view.k,
                             qkv_stride, 0.0f, d_qkv + view.q + q_row, qkv_stride);
    }
    // By key block: key j gets contributions from queries i >= j only, so dV = P^T dO and
    // dK = dS^T Q sum over the queries from the block's first key on.
    for (int first = 0; first < seq; first += kQueryBlock) {
      const int keys = std::min(kQueryBlock, seq - first), queries = seq - first;
      const std::size_t row = static_cast<std::size_t>(first) * qkv_stride;
      const std::size_t corner = static_cast<std::size_t>(first) * seq + first;
      failures += !try_sgemm('T', 'N', keys, hd, queries, 1.0f, p + corner, seq,
                             d_o + static_cast<std::size_t>(first) * out_stride, out_stride, 0.0f,
                             d_qkv + view.v + row, qkv_stride);
      failures +=
          !try_sgemm('T', 'N', keys, hd, queries, 1.0f, d_probs + corner, seq, qkv + view.q + row,
                     qkv_stride, 0.0f, d_qkv + view.k + row, qkv_stride);
    }
  }
  TESSERA_CHECK(failures == 0, std::to_string(failures) + " dnnl_sgemm calls failed");
}

}  // namespace tessera::cpu
