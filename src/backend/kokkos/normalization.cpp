// LayerNorm and RMSNorm of the Kokkos backend: a team per row (team_loops.hpp); statistics in
// fp32 with two passes (mean, then squared deviations), as the CPU backend. Gain and bias gradients
// are column sums over rows (column_block_teams: deterministic, no atomics).
#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "backend/kokkos/team_loops.hpp"

namespace tessera::kokkos {
namespace {

/// d_gain[c] += sum_r d_out[r, c] xhat[r, c]; d_bias[c] += sum_r d_out[r, c] (when not null);
/// xhat = (in - mean[r]) rstd[r], with a null mean meaning 0 (RMSNorm).
void reduce_parameter_grads(float* d_gain, float* d_bias, const float* d_out, const float* in,
                            const float* mean, const float* rstd, int rows, int dim) {
  const Vector<float> dg(d_gain, dim), db(d_bias, d_bias == nullptr ? 0 : dim);
  const Matrix<const float> dy(d_out, rows, dim), x(in, rows, dim);
  const Vector<const float> mu(mean, mean == nullptr ? 0 : rows), rs(rstd, rows);
  const bool has_mean = mean != nullptr, has_bias = d_bias != nullptr;
  Kokkos::parallel_for(
      "tessera::norm_parameter_grads", column_block_teams(dim), KOKKOS_LAMBDA(const Team& team) {
        const int begin = team.league_rank() * kColumnBlock;
        const int end = begin + kColumnBlock < dim ? begin + kColumnBlock : dim;
        team_column_sums(
            team, begin, end, rows,
            [&](const Index r, const Index c) {
              return dy(r, c) * (x(r, c) - (has_mean ? mu(r) : 0.0f)) * rs(r);
            },
            [&](const Index c, const float sum) { dg(c) += sum; });
        if (!has_bias) return;
        team_column_sums(
            team, begin, end, rows, [&](const Index r, const Index c) { return dy(r, c); },
            [&](const Index c, const float sum) { db(c) += sum; });
      });
}

}  // namespace

void KokkosBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                      const float* gain, const float* bias, int rows, int dim,
                                      float eps) {
  const Matrix<float> y(out, rows, dim);
  const Vector<float> mu(mean, rows), rs(rstd, rows);
  const Matrix<const float> x(in, rows, dim);
  const Vector<const float> g(gain, dim), b(bias, bias == nullptr ? 0 : dim);
  const bool has_bias = bias != nullptr;
  Kokkos::parallel_for(
      "tessera::layernorm_forward", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const float sum =
            team_reduce<Plus, float>(team, dim, [&](const Index c) { return x(r, c); });
        const float m = sum / static_cast<float>(dim);
        const float squares = team_reduce<Plus, float>(
            team, dim, [&](const Index c) { return (x(r, c) - m) * (x(r, c) - m); });
        const float inv_std = 1.0f / math::sqrt(squares / static_cast<float>(dim) + eps);
        // Two loops rather than a test per element, which would keep a host compiler from
        // vectorising.
        if (has_bias) {
          team_for(team, dim,
                   [&](const Index c) { y(r, c) = (x(r, c) - m) * inv_std * g(c) + b(c); });
        } else {
          team_for(team, dim, [&](const Index c) { y(r, c) = (x(r, c) - m) * inv_std * g(c); });
        }
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          mu(r) = m;
          rs(r) = inv_std;
        });
      });
}

void KokkosBackend::layernorm_backward(float* d_in, float* d_gain, float* d_bias,
                                       const float* d_out, const float* in, const float* gain,
                                       const float* mean, const float* rstd, int rows, int dim) {
  // With xhat = (x - mean) rstd and dxhat = d_out * gain:
  // d_in = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
  const Matrix<float> dx(d_in, rows, dim);
  const Matrix<const float> dy(d_out, rows, dim), x(in, rows, dim);
  const Vector<const float> g(gain, dim), mu(mean, rows), rs(rstd, rows);
  const float inv_dim = 1.0f / static_cast<float>(dim);
  Kokkos::parallel_for(
      "tessera::layernorm_backward", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const float m = mu(r), s = rs(r);
        const float sum_dxhat =
            team_reduce<Plus, float>(team, dim, [&](const Index c) { return dy(r, c) * g(c); });
        const float sum_dxhat_xhat = team_reduce<Plus, float>(
            team, dim, [&](const Index c) { return dy(r, c) * g(c) * (x(r, c) - m) * s; });
        const float mean_dxhat = sum_dxhat * inv_dim, mean_dxhat_xhat = sum_dxhat_xhat * inv_dim;
        team_for(team, dim, [&](const Index c) {
          const float xhat = (x(r, c) - m) * s;
          dx(r, c) = s * (dy(r, c) * g(c) - mean_dxhat - xhat * mean_dxhat_xhat);
        });
      });
  reduce_parameter_grads(d_gain, d_bias, d_out, in, mean, rstd, rows, dim);
}

void KokkosBackend::rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain,
                                    int rows, int dim, float eps) {
  const Matrix<float> y(out, rows, dim);
  const Vector<float> rs(rstd, rows);
  const Matrix<const float> x(in, rows, dim);
  const Vector<const float> g(gain, dim);
  Kokkos::parallel_for(
      "tessera::rmsnorm_forward", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const float squares =
            team_reduce<Plus, float>(team, dim, [&](const Index c) { return x(r, c) * x(r, c); });
        const float inv_rms = 1.0f / math::sqrt(squares / static_cast<float>(dim) + eps);
        team_for(team, dim, [&](const Index c) { y(r, c) = x(r, c) * inv_rms * g(c); });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { rs(r) = inv_rms; });
      });
}

void KokkosBackend::rmsnorm_backward(float* d_in, float* d_gain, const float* d_out,
                                     const float* in, const float* gain, const float* rstd,
                                     int rows, int dim) {
  // d_in = rstd (d_out gain - x rstd^2 mean(d_out gain x)).
  const Matrix<float> dx(d_in, rows, dim);
  const Matrix<const float> dy(d_out, rows, dim), x(in, rows, dim);
  const Vector<const float> g(gain, dim), rs(rstd, rows);
  const float inv_dim = 1.0f / static_cast<float>(dim);
  Kokkos::parallel_for(
      "tessera::rmsnorm_backward", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const float dot = team_reduce<Plus, float>(
            team, dim, [&](const Index c) { return dy(r, c) * g(c) * x(r, c); });
        const float correction = rs(r) * rs(r) * dot * inv_dim;
        team_for(team, dim, [&](const Index c) {
          dx(r, c) = rs(r) * (dy(r, c) * g(c) - x(r, c) * correction);
        });
      });
  reduce_parameter_grads(d_gain, nullptr, d_out, in, nullptr, rstd, rows, dim);
}

}  // namespace tessera::kokkos
