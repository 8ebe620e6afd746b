// Rotary position embedding of the CPU backend (pairs (i, i + head_dim/2), NeoX convention).
#include <cmath>
#include <string>

#include "backend/cpu/cpu_backend.hpp"
#include "core/error.hpp"

namespace tessera::cpu {
namespace {

/// Rotates pair i of the query and key heads of every token by +angle (sign = 1) or by -angle
/// (sign = -1, the inverse and also the transpose, since rotations are orthogonal).
void rotate(float* qkv, const float* table, const AttentionShape& shape, float sign) {
  const int half = shape.head_dim / 2;
  const std::size_t token_stride = 3 * static_cast<std::size_t>(shape.n_heads) * shape.head_dim;
  const std::size_t sin_offset = static_cast<std::size_t>(shape.seq) * half;
  const int rows = shape.batch * shape.seq;
#pragma omp parallel for schedule(static) if (token_stride * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* cos_row = table + static_cast<std::size_t>(r % shape.seq) * half;
    const float* sin_row = cos_row + sin_offset;
    // Queries and keys are the first 2 * n_heads heads of the token; values are left alone.
    for (int head = 0; head < 2 * shape.n_heads; ++head) {
      float* x = qkv + r * token_stride + static_cast<std::size_t>(head) * shape.head_dim;
#pragma omp simd
      for (int i = 0; i < half; ++i) {
        const float first = x[i];
        const float second = x[i + half];
        const float s = sign * sin_row[i];
        x[i] = first * cos_row[i] - second * s;
        x[i + half] = first * s + second * cos_row[i];
      }
    }
  }
}

}  // namespace

const float* CpuBackend::rotary_table(const AttentionShape& shape, float base) {
  TESSERA_CHECK(shape.head_dim % 2 == 0,
                "rotary embedding needs an even head_dim, got " + std::to_string(shape.head_dim));
  const int half = shape.head_dim / 2;
  const std::size_t pairs = static_cast<std::size_t>(shape.seq) * half;
  float* table = scratch(2 * pairs);
  // Angles in double: position * frequency reaches thousands of radians, where a float angle
  // would already be off by ~1e-4.
#pragma omp parallel for schedule(static) if (pairs >= kParallelThreshold / 16)
  for (int position = 0; position < shape.seq; ++position) {
    for (int i = 0; i < half; ++i) {
      const double frequency = std::pow(static_cast<double>(base), -2.0 * i / shape.head_dim);
      const double angle = (shape.first_position + position) * frequency;
      table[static_cast<std::size_t>(position) * half + i] = static_cast<float>(std::cos(angle));
      table[pairs + static_cast<std::size_t>(position) * half + i] =
          static_cast<float>(std::sin(angle));
    }
  }
  return table;
}

void CpuBackend::rotary_forward(float* qkv, const AttentionShape& shape, float base) {
  rotate(qkv, rotary_table(shape, base), shape, 1.0f);
}

void CpuBackend::rotary_backward(float* d_qkv, const AttentionShape& shape, float base) {
  rotate(d_qkv, rotary_table(shape, base), shape, -1.0f);
}

}  // namespace tessera::cpu
