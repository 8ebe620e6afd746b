// Plain double-precision reference of every kernel in backend/backend.hpp: straightforward loops
// written from the formulas, sharing no code with any backend. Conformance tests compare each
// backend's forward pass with these, and its backward pass with central finite differences of
// these forwards. Only forwards (and the AdamW step) are here: gradients come from differences.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"

namespace tessera::reference {

using Vector = std::vector<double>;

/// out[r, :] = table[token - vocab_begin, :] for tokens of this shard, zeros otherwise.
Vector embedding(const std::vector<int32_t>& tokens, const Vector& table, int dim, int vocab_begin,
                 int vocab_local);
/// out[r, :] = in[r, :] + table[r % seq, :].
Vector add_positions(const Vector& in, const Vector& table, int rows, int seq, int dim);

struct NormResult {
  Vector out;
  Vector mean;  ///< empty for RMSNorm
  Vector rstd;
};
/// bias may be empty (no bias).
NormResult layernorm(const Vector& in, const Vector& gain, const Vector& bias, int rows, int dim,
                     double eps);
NormResult rmsnorm(const Vector& in, const Vector& gain, int rows, int dim, double eps);

/// out[r, o] = sum_i in[r, i] weight[o, i] + bias[o]; bias may be empty.
Vector linear(const Vector& in, const Vector& weight, const Vector& bias, int rows, int in_features,
              int out_features);

Vector gelu(const Vector& in);
Vector swiglu(const Vector& gate, const Vector& up);

/// Rotates pairs (i, i + head_dim/2) of query and key heads by position * base^(-2i/head_dim).
Vector rotary(const Vector& qkv, const AttentionShape& shape, double base);

struct AttentionResult {
  Vector out;    ///< [batch, seq, n_heads, head_dim]
  Vector probs;  ///< [batch, n_heads, seq, seq], zero above the diagonal
};
AttentionResult attention(const Vector& qkv, const AttentionShape& shape);

/// losses[r] = lse_r - logits[r, target_r] + z_loss lse_r^2.
Vector cross_entropy(const Vector& logits, const std::vector<int32_t>& targets, int rows, int vocab,
                     double z_loss);

/// One AdamW step in place, bias-corrected at `step` (1-based).
void adamw(Vector& param, const Vector& grad, Vector& m, Vector& v, double lr, double beta1,
           double beta2, double eps, double weight_decay, int step);

double sum_of_squares(const Vector& x);

}  // namespace tessera::reference
