#include "reference_ops.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tessera::reference {

Vector embedding(const std::vector<int32_t>& tokens, const Vector& table, int dim, int vocab_begin,
                 int vocab_local) {
  const std::size_t rows = tokens.size();
  Vector out(rows * dim, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    const int local = tokens[r] - vocab_begin;
    if (local < 0 || local >= vocab_local) continue;
    for (int c = 0; c < dim; ++c)
      out[r * dim + c] = table[static_cast<std::size_t>(local) * dim + c];
  }
  return out;
}

Vector add_positions(const Vector& in, const Vector& table, int rows, int seq, int dim) {
  Vector out = in;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < dim; ++c) out[r * dim + c] += table[(r % seq) * dim + c];
  }
  return out;
}

NormResult layernorm(const Vector& in, const Vector& gain, const Vector& bias, int rows, int dim,
                     double eps) {
  NormResult result{Vector(in.size()), Vector(rows), Vector(rows)};
  for (int r = 0; r < rows; ++r) {
    const double* x = &in[static_cast<std::size_t>(r) * dim];
    double mean = 0.0;
    for (int c = 0; c < dim; ++c) mean += x[c] / dim;
    double variance = 0.0;
    for (int c = 0; c < dim; ++c) variance += (x[c] - mean) * (x[c] - mean) / dim;
    const double rstd = 1.0 / std::sqrt(variance + eps);
    for (int c = 0; c < dim; ++c) {
      result.out[r * dim + c] = (x[c] - mean) * rstd * gain[c] + (bias.empty() ? 0.0 : bias[c]);
    }
    result.mean[r] = mean;
    result.rstd[r] = rstd;
  }
  return result;
}

NormResult rmsnorm(const Vector& in, const Vector& gain, int rows, int dim, double eps) {
  NormResult result{Vector(in.size()), Vector(), Vector(rows)};
  for (int r = 0; r < rows; ++r) {
    const double* x = &in[static_cast<std::size_t>(r) * dim];
    double mean_square = 0.0;
    for (int c = 0; c < dim; ++c) mean_square += x[c] * x[c] / dim;
    const double rstd = 1.0 / std::sqrt(mean_square + eps);
    for (int c = 0; c < dim; ++c) result.out[r * dim + c] = x[c] * rstd * gain[c];
    result.rstd[r] = rstd;
  }
  return result;
}

Vector linear(const Vector& in, const Vector& weight, const Vector& bias, int rows, int in_features,
              int out_features) {
  Vector out(static_cast<std::size_t>(rows) * out_features);
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < out_features; ++o) {
      double sum = bias.empty() ? 0.0 : bias[o];
      for (int i = 0; i < in_features; ++i) {
        sum += in[r * in_features + i] * weight[o * in_features + i];
      }
      out[r * out_features + o] = sum;
    }
  }
  return out;
}

Vector gelu(const Vector& in) {
  Vector out(in.size());
  const double c = std::sqrt(2.0 / std::numbers::pi);
  for (std::size_t i = 0; i < in.size(); ++i) {
    const double x = in[i];
    out[i] = 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
  }
  return out;
}

Vector swiglu(const Vector& gate, const Vector& up) {
  Vector out(gate.size());
  for (std::size_t i = 0; i < gate.size(); ++i) {
    out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  }
  return out;
}

namespace {

/// Index of element d of head h (0 <= h < 3 n_heads: queries, keys, values) of token (b, t).
std::size_t qkv_index(const AttentionShape& s, int b, int t, int h, int d) {
  return ((static_cast<std::size_t>(b) * s.seq + t) * 3 * s.n_heads + h) * s.head_dim + d;
}

}  // namespace

Vector rotary(const Vector& qkv, const AttentionShape& s, double base) {
  Vector out = qkv;
  const int half = s.head_dim / 2;
  for (int b = 0; b < s.batch; ++b) {
    for (int t = 0; t < s.seq; ++t) {
      for (int h = 0; h < 2 * s.n_heads; ++h) {
        for (int i = 0; i < half; ++i) {
          const double angle = t * std::pow(base, -2.0 * i / s.head_dim);
          const double x1 = qkv[qkv_index(s, b, t, h, i)];
          const double x2 = qkv[qkv_index(s, b, t, h, i + half)];
          out[qkv_index(s, b, t, h, i)] = x1 * std::cos(angle) - x2 * std::sin(angle);
          out[qkv_index(s, b, t, h, i + half)] = x1 * std::sin(angle) + x2 * std::cos(angle);
        }
      }
    }
  }
  return out;
}

AttentionResult attention(const Vector& qkv, const AttentionShape& s) {
  const std::size_t seq = static_cast<std::size_t>(s.seq);
  AttentionResult result{Vector(static_cast<std::size_t>(s.batch) * seq * s.n_heads * s.head_dim),
                         Vector(static_cast<std::size_t>(s.batch) * s.n_heads * seq * seq, 0.0)};
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.n_heads; ++h) {
      double* probs = &result.probs[(static_cast<std::size_t>(b) * s.n_heads + h) * seq * seq];
      for (int i = 0; i < s.seq; ++i) {
        Vector scores(i + 1);
        for (int j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int d = 0; d < s.head_dim; ++d) {
            dot += qkv[qkv_index(s, b, i, h, d)] * qkv[qkv_index(s, b, j, s.n_heads + h, d)];
          }
          scores[j] = dot * scale;
        }
        const double max = *std::max_element(scores.begin(), scores.end());
        double sum = 0.0;
        for (double& score : scores) sum += (score = std::exp(score - max));
        for (int j = 0; j <= i; ++j) probs[i * seq + j] = scores[j] / sum;
        for (int d = 0; d < s.head_dim; ++d) {
          double value = 0.0;
          for (int j = 0; j <= i; ++j) {
            value += probs[i * seq + j] * qkv[qkv_index(s, b, j, 2 * s.n_heads + h, d)];
          }
          result.out[((b * seq + i) * s.n_heads + h) * s.head_dim + d] = value;
        }
      }
    }
  }
  return result;
}

Vector cross_entropy(const Vector& logits, const std::vector<int32_t>& targets, int rows, int vocab,
                     double z_loss) {
  Vector losses(rows);
  for (int r = 0; r < rows; ++r) {
    const double* x = &logits[static_cast<std::size_t>(r) * vocab];
    const double max = *std::max_element(x, x + vocab);
    double sum = 0.0;
    for (int j = 0; j < vocab; ++j) sum += std::exp(x[j] - max);
    const double lse = max + std::log(sum);
    losses[r] = lse - x[targets[r]] + z_loss * lse * lse;
  }
  return losses;
}

void adamw(Vector& param, const Vector& grad, Vector& m, Vector& v, double lr, double beta1,
           double beta2, double eps, double weight_decay, int step) {
  for (std::size_t i = 0; i < param.size(); ++i) {
    m[i] = beta1 * m[i] + (1.0 - beta1) * grad[i];
    v[i] = beta2 * v[i] + (1.0 - beta2) * grad[i] * grad[i];
    const double m_hat = m[i] / (1.0 - std::pow(beta1, step));
    const double v_hat = v[i] / (1.0 - std::pow(beta2, step));
    param[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + weight_decay * param[i]);
  }
}

double sum_of_squares(const Vector& x) {
  // Neumaier's compensated sum: a plain double loop over 1e6 terms would itself be off by ~1e-11
  // relative, more than the kernel it checks.
  double sum = 0.0, compensation = 0.0;
  for (double value : x) {
    const double term = value * value;
    const double next = sum + term;
    compensation += std::abs(sum) >= std::abs(term) ? (sum - next) + term : (term - next) + sum;
    sum = next;
  }
  return sum + compensation;
}

}  // namespace tessera::reference
