// Linear layers of the Kokkos backend: GEMMs through KokkosBlas::gemm, which hands them to the
// vendor BLAS of the build (OpenBLAS on a CPU, cuBLAS, rocBLAS, oneMKL), on row-major views.
#include <KokkosBlas3_gemm.hpp>

#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "backend/kokkos/team_loops.hpp"

namespace tessera::kokkos {

void KokkosBackend::linear_forward(float* out, const float* in, const float* weight,
                                   const float* bias, int rows, int in_features, int out_features) {
  const Matrix<float> y(out, rows, out_features);
  // out = in @ weight^T: weight is [out_features, in_features], PyTorch's layout.
  KokkosBlas::gemm(kNoTranspose, kTranspose, 1.0f, Matrix<const float>(in, rows, in_features),
                   Matrix<const float>(weight, out_features, in_features), 0.0f, y);
  if (bias == nullptr) return;
  const Vector<const float> b(bias, out_features);
  Kokkos::parallel_for(
      "tessera::linear_bias", grid(rows, out_features),
      KOKKOS_LAMBDA(const Index r, const Index c) { y(r, c) += b(c); });
}

void KokkosBackend::linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                                    const float* in, const float* weight, int rows, int in_features,
                                    int out_features) {
  const Matrix<const float> dy(d_out, rows, out_features);
  if (d_in != nullptr) {  // d_in = d_out @ weight
    KokkosBlas::gemm(kNoTranspose, kNoTranspose, 1.0f, dy,
                     Matrix<const float>(weight, out_features, in_features), 0.0f,
                     Matrix<float>(d_in, rows, in_features));
  }
  // d_weight += d_out^T @ in
  KokkosBlas::gemm(kTranspose, kNoTranspose, 1.0f, dy, Matrix<const float>(in, rows, in_features),
                   1.0f, Matrix<float>(d_weight, out_features, in_features));
  if (d_bias == nullptr) return;
  const Vector<float> db(d_bias, out_features);
  Kokkos::parallel_for(
      "tessera::linear_bias_backward", column_block_teams(out_features),
      KOKKOS_LAMBDA(const Team& team) {
        const int begin = team.league_rank() * kColumnBlock;
        const int end = begin + kColumnBlock < out_features ? begin + kColumnBlock : out_features;
        team_column_sums(
            team, begin, end, rows, [&](const Index r, const Index c) { return dy(r, c); },
            [&](const Index c, const float sum) { db(c) += sum; });
      });
}

}  // namespace tessera::kokkos
