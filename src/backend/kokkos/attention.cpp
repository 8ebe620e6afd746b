// Causal multi-head attention of the Kokkos backend. The heads of the packed qkv buffer are
// copied into contiguous [head][seq][head_dim] blocks, so that every product is one GEMM per
// (batch, head) through KokkosBlas::gemm (the vendor BLAS); the causal softmax and its backward
// run a team per row. The state kept for the backward pass is the probabilities
// [batch, n_heads, seq, seq], zero above the diagonal (the seam's default size).
//
// Forward:  S = Q K^T / sqrt(head_dim);  P = causal_softmax(S);  O = P V.
// Backward: dV = P^T dO;  dP = dO V^T;  dS = P * (dP - rowsum(P * dP)) / sqrt(head_dim);
//           dQ = dS K;  dK = dS^T Q.
//
// The GEMMs compute whole seq x seq blocks, above the diagonal too (masked afterwards): twice the
// work of the causal part, in exchange for one large GEMM per head.
#include <KokkosBlas3_gemm.hpp>
#include <cmath>

#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "backend/kokkos/team_loops.hpp"

namespace tessera::kokkos {
namespace {

/// Contiguous per-head blocks: `parts` blocks of [batch * n_heads][seq][head_dim] floats.
class HeadBlocks {
 public:
  HeadBlocks(float* data, const AttentionShape& shape)
      : data_(data),
        seq_(shape.seq),
        head_dim_(shape.head_dim),
        heads_(static_cast<std::size_t>(shape.batch) * shape.n_heads) {}
  static std::size_t floats_per_part(const AttentionShape& shape) {
    return static_cast<std::size_t>(shape.batch) * shape.n_heads * shape.seq * shape.head_dim;
  }
  /// The [seq, head_dim] matrix of head `head` (batch * n_heads + h) of part `part`.
  Matrix<float> matrix(int part, std::size_t head) const {
    return Matrix<float>(data_ + (part * heads_ + head) * seq_ * head_dim_, seq_, head_dim_);
  }
  float* data() const { return data_; }
  std::size_t heads() const { return heads_; }

 private:
  float* data_;
  std::size_t seq_, head_dim_, heads_;
};

/// Copies between the model's layout and head blocks, either way: qkv ([batch, seq, 3, n_heads,
/// head_dim], `parts` = 3) or out ([batch, seq, n_heads, head_dim], one part) against blocks
/// [part][batch][head][seq][head_dim]. Every element of the destination is written.
template <bool kToBlocks>
void copy_heads(float* blocks, float* packed, const AttentionShape& shape, int parts) {
  const Index batch = shape.batch, seq = shape.seq, n_heads = shape.n_heads;
  const Index head_dim = shape.head_dim, part_count = parts;
  const std::size_t count = HeadBlocks::floats_per_part(shape) * parts;
  const Vector<float> b(blocks, count), p(packed, count);
  Kokkos::parallel_for(
      "tessera::attention_copy_heads",
      GridPolicy<5>({0, 0, 0, 0, 0}, {part_count, batch, n_heads, seq, head_dim}),
      KOKKOS_LAMBDA(const Index part, const Index n, const Index h, const Index s, const Index d) {
        const Index in_blocks = (((part * batch + n) * n_heads + h) * seq + s) * head_dim + d;
        const Index in_packed = (((n * seq + s) * part_count + part) * n_heads + h) * head_dim + d;
        if constexpr (kToBlocks) {
          b(in_blocks) = p(in_packed);
        } else {
          p(in_packed) = b(in_blocks);
        }
      });
}

/// blocks = the heads of `packed`, contiguous per head.
void gather_heads(float* blocks, const float* packed, const AttentionShape& shape, int parts) {
  // Only read here: the const_cast lets one kernel serve both directions.
  copy_heads<true>(blocks, const_cast<float*>(packed), shape, parts);
}

/// packed = the head blocks, back in the model's layout.
void scatter_heads(float* packed, const float* blocks, const AttentionShape& shape, int parts) {
  copy_heads<false>(const_cast<float*>(blocks), packed, shape, parts);  // blocks: only read
}

/// C = alpha op(A) op(B) + beta C for one head.
void head_gemm(const char* transpose_a, const char* transpose_b, float alpha,
               const Matrix<const float>& a, const Matrix<const float>& b, float beta,
               const Matrix<float>& c) {
  KokkosBlas::gemm(transpose_a, transpose_b, alpha, a, b, beta, c);
}

}  // namespace

void KokkosBackend::attention_forward(float* out, float* probs, const float* qkv,
                                      const AttentionShape& shape) {
  const std::size_t part = HeadBlocks::floats_per_part(shape);
  float* work = workspace(4 * part);
  const HeadBlocks heads(work, shape), outputs(work + 3 * part, shape);
  gather_heads(heads.data(), qkv, shape, 3);
  const int seq = shape.seq;
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const Index block = static_cast<Index>(seq) * seq;
  for (std::size_t h = 0; h < heads.heads(); ++h) {
    head_gemm(kNoTranspose, kTranspose, scale, heads.matrix(0, h), heads.matrix(1, h), 0.0f,
              Matrix<float>(probs + h * block, seq, seq));
  }
  const Matrix<float> p(probs, heads.heads() * seq, seq);
  Kokkos::parallel_for(
      "tessera::causal_softmax", row_teams(static_cast<int>(heads.heads()) * seq),
      KOKKOS_LAMBDA(const Team& team) {
        const int row = team.league_rank(), i = row % seq;
        const float max =
            team_reduce<Largest, float>(team, i + 1, [&](const Index j) { return p(row, j); });
        const double sum = team_reduce<Plus, double>(team, i + 1, [&](const Index j) {
          p(row, j) = math::exp_approx(p(row, j) - max);
          return p(row, j);
        });
        const float inv_sum = static_cast<float>(1.0 / sum);
        team_for(team, seq,
                 [&](const Index j) { p(row, j) = j <= i ? p(row, j) * inv_sum : 0.0f; });
      });
  for (std::size_t h = 0; h < heads.heads(); ++h) {
    head_gemm(kNoTranspose, kNoTranspose, 1.0f, Matrix<const float>(probs + h * block, seq, seq),
              heads.matrix(2, h), 0.0f, outputs.matrix(0, h));
  }
  scatter_heads(out, outputs.data(), shape, 1);
}

void KokkosBackend::attention_backward(float* d_qkv, const float* d_out, const float* qkv,
                                       const float* /*out*/, const float* probs,
                                       const AttentionShape& shape) {
  const std::size_t part = HeadBlocks::floats_per_part(shape);
  const int seq = shape.seq;
  const Index block = static_cast<Index>(seq) * seq;
  const std::size_t head_count = static_cast<std::size_t>(shape.batch) * shape.n_heads;
  // q, k, v, dO heads; dQ, dK, dV heads; dS of every head.
  float* work = workspace(7 * part + head_count * block);
  const HeadBlocks heads(work, shape), d_output(work + 3 * part, shape),
      grads(work + 4 * part, shape);
  float* d_scores = work + 7 * part;
  gather_heads(heads.data(), qkv, shape, 3);
  gather_heads(d_output.data(), d_out, shape, 1);
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  for (std::size_t h = 0; h < head_count; ++h) {
    const Matrix<const float> p(probs + h * block, seq, seq);
    head_gemm(kTranspose, kNoTranspose, 1.0f, p, d_output.matrix(0, h), 0.0f,
              grads.matrix(2, h));  // dV = P^T dO
    head_gemm(kNoTranspose, kTranspose, 1.0f, d_output.matrix(0, h), heads.matrix(2, h), 0.0f,
              Matrix<float>(d_scores + h * block, seq, seq));  // dP = dO V^T
  }
  const Matrix<const float> p(probs, head_count * seq, seq);
  const Matrix<float> ds(d_scores, head_count * seq, seq);
  Kokkos::parallel_for(
      "tessera::causal_softmax_backward", row_teams(static_cast<int>(head_count) * seq),
      KOKKOS_LAMBDA(const Team& team) {
        const int row = team.league_rank(), i = row % seq;
        const float dot = team_reduce<Plus, float>(
            team, i + 1, [&](const Index j) { return p(row, j) * ds(row, j); });
        team_for(team, seq, [&](const Index j) {
          ds(row, j) = j <= i ? p(row, j) * (ds(row, j) - dot) * scale : 0.0f;
        });
      });
  for (std::size_t h = 0; h < head_count; ++h) {
    const Matrix<float> d_s(d_scores + h * block, seq, seq);
    head_gemm(kNoTranspose, kNoTranspose, 1.0f, d_s, heads.matrix(1, h), 0.0f,
              grads.matrix(0, h));  // dQ = dS K
    head_gemm(kTranspose, kNoTranspose, 1.0f, d_s, heads.matrix(0, h), 0.0f,
              grads.matrix(1, h));  // dK = dS^T Q
  }
  scatter_heads(d_qkv, grads.data(), shape, 3);
}

}  // namespace tessera::kokkos
