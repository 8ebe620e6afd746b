// Rotary position embedding of the Kokkos backend (pairs (i, i + head_dim/2), NeoX convention).
#include <string>

#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "core/error.hpp"

namespace tessera::kokkos {

void KokkosBackend::rotate(float* qkv, const AttentionShape& shape, float base, float sign) {
  TESSERA_CHECK(shape.head_dim % 2 == 0,
                "rotary embedding needs an even head_dim, got " + std::to_string(shape.head_dim));
  const int half = shape.head_dim / 2, seq = shape.seq, head_dim = shape.head_dim;
  const int first_position = shape.first_position;
  const std::size_t pairs = static_cast<std::size_t>(seq) * half;
  // cos and sin of every (position, pair), the angle in double: position * frequency reaches
  // thousands of radians, where a float angle would already be off by ~1e-4.
  const Matrix<float> table(workspace(2 * pairs), 2, pairs);
  Kokkos::parallel_for(
      "tessera::rotary_table", grid(seq, half), KOKKOS_LAMBDA(const Index position, const Index i) {
        const Index p = position * half + i;
        const double frequency =
            math::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / head_dim);
        const double angle = static_cast<double>(first_position + position) * frequency;
        table(0, p) = static_cast<float>(math::cos(angle));
        table(1, p) = static_cast<float>(math::sin(angle));
      });
  // Queries and keys are the first 2 * n_heads heads of each token; values are left alone.
  const int rows = shape.batch * seq, heads = 2 * shape.n_heads;
  const Index token_stride = static_cast<Index>(3) * shape.n_heads * head_dim;
  const Vector<float> x(qkv, static_cast<std::size_t>(rows) * token_stride);
  Kokkos::parallel_for(
      "tessera::rotary", GridPolicy<3>({0, 0, 0}, {rows, heads, half}),
      KOKKOS_LAMBDA(const Index r, const Index head, const Index i) {
        const Index p = (r % seq) * half + i;
        const Index first = r * token_stride + head * head_dim + i, second = first + half;
        const float c = table(0, p), s = sign * table(1, p);
        const float a = x(first), b = x(second);
        x(first) = a * c - b * s;
        x(second) = a * s + b * c;
      });
}

void KokkosBackend::rotary_forward(float* qkv, const AttentionShape& shape, float base) {
  rotate(qkv, shape, base, 1.0f);
}

void KokkosBackend::rotary_backward(float* d_qkv, const AttentionShape& shape, float base) {
  rotate(d_qkv, shape, base, -1.0f);  // the inverse rotation, which is also the transpose
}

}  // namespace tessera::kokkos
