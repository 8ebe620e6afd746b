// Causal multi-head attention of the CUDA backend: strided-batched GEMMs (matmul.cpp, in the
// backend's precision) on strided views of the packed qkv buffer, or of its one bf16 copy, and
// warp-per-row causal softmax kernels in fp32.
//
// Forward:  S = Q K^T / sqrt(head_dim);  P = causal_softmax(S);  O = P V.
// Backward: dV = P^T dO;  dP = dO V^T;  dS = P * (dP - rowsum(P * dP)) / sqrt(head_dim);
//           dQ = dS K;  dK = dS^T Q.
// The (batch, head) grid is walked as an outer loop over the smaller of the two and one batched
// GEMM over the larger, since one stride must step between consecutive matrices of a batch.
#include <cmath>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/device_reduce.cuh"

namespace tessera::cuda {
namespace {

constexpr int kRowsPerBlock = kBlockThreads / kWarpSize;

/// Element offsets of one (batch, head) slice, split into an outer loop and a GEMM batch.
struct HeadBatching {
  int outer = 0, inner = 0;
  long long qkv_outer = 0, qkv_inner = 0;      ///< between slices of qkv (and d_qkv)
  long long out_outer = 0, out_inner = 0;      ///< between slices of out (and d_out)
  long long probs_outer = 0, probs_inner = 0;  ///< between [seq, seq] blocks of probs
};

HeadBatching head_batching(const AttentionShape& s) {
  const long long hd = s.head_dim, heads = s.n_heads, seq = s.seq;
  const long long batch_qkv = seq * 3 * heads * hd, batch_out = seq * heads * hd;
  const long long batch_probs = heads * seq * seq, head_probs = seq * seq;
  if (s.batch <= s.n_heads)
    return {s.batch, s.n_heads, batch_qkv, hd, batch_out, hd, batch_probs, head_probs};
  return {s.n_heads, s.batch, hd, batch_qkv, hd, batch_out, head_probs, batch_probs};
}

/// In place over rows of [seq, seq] blocks: softmax over columns j <= i of row i, zero above.
__global__ void causal_softmax_kernel(float* scores, long long rows, int seq) {
  const long long row =
      static_cast<long long>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (row >= rows) return;
  const int lane = threadIdx.x % kWarpSize;
  const int i = static_cast<int>(row % seq);
  float* x = scores + row * seq;
  float max = -INFINITY;
  for (int j = lane; j <= i; j += kWarpSize) max = fmaxf(max, x[j]);
  max = warp_max(max);
  float sum = 0.0f;
  for (int j = lane; j <= i; j += kWarpSize) {
    x[j] = expf(x[j] - max);
    sum += x[j];
  }
  const float inv_sum = 1.0f / warp_sum(sum);
  for (int j = lane; j < seq; j += kWarpSize) x[j] = j <= i ? x[j] * inv_sum : 0.0f;
}

/// d_probs becomes dS = probs * (d_probs - rowsum(probs * d_probs)) * scale, zero above the
/// diagonal. Rows are those of `blocks` consecutive [seq, seq] blocks of d_probs; block k of
/// probs starts at probs + k * probs_stride.
__global__ void softmax_backward_kernel(float* d_probs, const float* probs, long long probs_stride,
                                        int blocks, int seq, float scale) {
  const long long row =
      static_cast<long long>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (row >= static_cast<long long>(blocks) * seq) return;
  const int lane = threadIdx.x % kWarpSize;
  const int i = static_cast<int>(row % seq);
  const long long block = row / seq;
  float* d = d_probs + row * seq;
  const float* p = probs + block * probs_stride + static_cast<long long>(i) * seq;
  float dot = 0.0f;
  for (int j = lane; j <= i; j += kWarpSize) dot += p[j] * d[j];
  dot = warp_sum(dot);
  for (int j = lane; j < seq; j += kWarpSize) d[j] = j <= i ? p[j] * (d[j] - dot) * scale : 0.0f;
}

int row_blocks(long long rows) { return blocks_for(static_cast<std::size_t>(rows), kRowsPerBlock); }

}  // namespace

void CudaBackend::attention_forward(float* out, float* probs, const float* qkv,
                                    const AttentionShape& shape) {
  const int seq = shape.seq, hd = shape.head_dim;
  if (shape.batch == 0 || shape.n_heads == 0 || seq == 0) return;
  const int qkv_stride = 3 * shape.n_heads * hd, out_stride = shape.n_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const HeadBatching hb = head_batching(shape);
  const long long key = static_cast<long long>(shape.n_heads) * hd;  // from a head's q to its k
  const long long rows = static_cast<long long>(shape.batch) * shape.n_heads * seq;
  const Operand qkv_operand = operand(CastSlot::activation, qkv, rows * 3 * hd);
  for (int o = 0; o < hb.outer; ++o) {
    const Operand q = qkv_operand + o * hb.qkv_outer;
    matmul_batched({'N', 'T', seq, seq, hd, qkv_stride, qkv_stride, seq}, scale, q, hb.qkv_inner,
                   q + key, hb.qkv_inner, 0.0f, probs + o * hb.probs_outer, hb.probs_inner,
                   hb.inner);
  }
  causal_softmax_kernel<<<row_blocks(rows), kBlockThreads, 0, stream_>>>(probs, rows, seq);
  check_launch();
  const Operand probs_operand = operand(CastSlot::probabilities, probs, rows * seq);
  for (int o = 0; o < hb.outer; ++o) {
    const Operand v = qkv_operand + o * hb.qkv_outer + 2 * key;
    matmul_batched({'N', 'N', seq, hd, seq, seq, qkv_stride, out_stride}, 1.0f,
                   probs_operand + o * hb.probs_outer, hb.probs_inner, v, hb.qkv_inner, 0.0f,
                   out + o * hb.out_outer, hb.out_inner, hb.inner);
  }
}

void CudaBackend::attention_backward(float* d_qkv, const float* d_out, const float* qkv,
                                     const float* probs, const AttentionShape& shape) {
  const int seq = shape.seq, hd = shape.head_dim;
  if (shape.batch == 0 || shape.n_heads == 0 || seq == 0) return;
  const int qkv_stride = 3 * shape.n_heads * hd, out_stride = shape.n_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const HeadBatching hb = head_batching(shape);
  const long long key = static_cast<long long>(shape.n_heads) * hd;
  const long long square = static_cast<long long>(seq) * seq;
  const long long rows = static_cast<long long>(shape.batch) * shape.n_heads * seq;
  const Operand qkv_operand = operand(CastSlot::activation, qkv, rows * 3 * hd);
  const Operand probs_operand = operand(CastSlot::probabilities, probs, rows * seq);
  const Operand d_out_operand = operand(CastSlot::output_gradient, d_out, rows * hd);
  // dP / dS of one outer slice: `inner` contiguous [seq, seq] blocks, reused by every slice.
  float* d_probs = static_cast<float*>(scratch(hb.inner * square * sizeof(float)));
  for (int o = 0; o < hb.outer; ++o) {
    const Operand q = qkv_operand + o * hb.qkv_outer;
    const Operand p = probs_operand + o * hb.probs_outer;
    const Operand d_o = d_out_operand + o * hb.out_outer;
    float* d_q = d_qkv + o * hb.qkv_outer;
    // dV = P^T dO;  dP = dO V^T
    matmul_batched({'T', 'N', seq, hd, seq, seq, out_stride, qkv_stride}, 1.0f, p, hb.probs_inner,
                   d_o, hb.out_inner, 0.0f, d_q + 2 * key, hb.qkv_inner, hb.inner);
    matmul_batched({'N', 'T', seq, seq, hd, out_stride, qkv_stride, seq}, 1.0f, d_o, hb.out_inner,
                   q + 2 * key, hb.qkv_inner, 0.0f, d_probs, square, hb.inner);
    softmax_backward_kernel<<<row_blocks(hb.inner * static_cast<long long>(seq)), kBlockThreads, 0,
                              stream_>>>(d_probs, p.fp32, hb.probs_inner, hb.inner, seq, scale);
    check_launch();
    // dQ = dS K;  dK = dS^T Q
    const Operand d_s = operand(CastSlot::probability_gradient, d_probs, hb.inner * square);
    matmul_batched({'N', 'N', seq, hd, seq, seq, qkv_stride, qkv_stride}, 1.0f, d_s, square,
                   q + key, hb.qkv_inner, 0.0f, d_q, hb.qkv_inner, hb.inner);
    matmul_batched({'T', 'N', seq, hd, seq, seq, qkv_stride, qkv_stride}, 1.0f, d_s, square, q,
                   hb.qkv_inner, 0.0f, d_q + key, hb.qkv_inner, hb.inner);
  }
}

}  // namespace tessera::cuda
