// Token and learned-position embeddings of the Kokkos backend. The backward passes sum rows into
// table rows by column blocks (kokkos_common.hpp): repeated tokens never race, no atomics.
#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"

namespace tessera::kokkos {
namespace {

/// Row of the local table for `token`, or -1 when another shard holds it.
KOKKOS_INLINE_FUNCTION Index local_row(int32_t token, int vocab_begin, int vocab_local) {
  const Index row = static_cast<Index>(token) - vocab_begin;
  return row >= 0 && row < vocab_local ? row : -1;
}

}  // namespace

void KokkosBackend::embedding_forward(float* out, const int32_t* tokens, const float* table,
                                      int rows, int dim, int vocab_begin, int vocab_local) {
  const Matrix<float> y(out, rows, dim);
  const Vector<const int32_t> ids(tokens, rows);
  const Matrix<const float> t(table, vocab_local, dim);
  Kokkos::parallel_for(
      "tessera::embedding_forward", grid(rows, dim), KOKKOS_LAMBDA(const Index r, const Index c) {
        const Index row = local_row(ids(r), vocab_begin, vocab_local);
        y(r, c) = row < 0 ? 0.0f : t(row, c);
      });
}

void KokkosBackend::embedding_backward(float* d_table, const int32_t* tokens, const float* d_out,
                                       int rows, int dim, int vocab_begin, int vocab_local) {
  const Matrix<float> dt(d_table, vocab_local, dim);
  const Vector<const int32_t> ids(tokens, rows);
  const Matrix<const float> dy(d_out, rows, dim);
  Kokkos::parallel_for(
      "tessera::embedding_backward", column_block_teams(dim), KOKKOS_LAMBDA(const Team& team) {
        const int begin = team.league_rank() * kColumnBlock;
        const int end = begin + kColumnBlock < dim ? begin + kColumnBlock : dim;
        for (int r = 0; r < rows; ++r) {
          const Index row = local_row(ids(r), vocab_begin, vocab_local);
          if (row < 0) continue;
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, begin, end),
                               [&](const int c) { dt(row, c) += dy(r, c); });
        }
      });
}

void KokkosBackend::position_forward(float* out, const float* table, int rows, int seq, int dim) {
  const Matrix<float> y(out, rows, dim);
  const Matrix<const float> t(table, seq, dim);
  Kokkos::parallel_for(
      "tessera::position_forward", grid(rows, dim),
      KOKKOS_LAMBDA(const Index r, const Index c) { y(r, c) += t(r % seq, c); });
}

void KokkosBackend::position_backward(float* d_table, const float* d_out, int rows, int seq,
                                      int dim) {
  // Each (position, column) adds the batch's rows of that position in order.
  const Matrix<float> dt(d_table, seq, dim);
  const Matrix<const float> dy(d_out, rows, dim);
  Kokkos::parallel_for(
      "tessera::position_backward", grid(seq, dim),
      KOKKOS_LAMBDA(const Index position, const Index c) {
        float sum = dt(position, c);
        for (Index r = position; r < rows; r += seq) sum += dy(r, c);
        dt(position, c) = sum;
      });
}

}  // namespace tessera::kokkos
