// Softmax cross-entropy with z-loss, fused with its gradient, of the Kokkos backend: a team per
// row. The vocab-parallel variant computes per-shard statistics, rebases them onto the group's
// maximum, and finishes the loss and the gradient of the shard's columns.
//
// d_logits may alias logits: each row reads its target logit and maximum before any thread of
// the team writes, and element j is written only by the thread that read it.
#include <string>

#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "backend/kokkos/team_loops.hpp"
#include "core/error.hpp"

namespace tessera::kokkos {
namespace {

/// Throws InternalError naming the first target outside [0, vocab) (before any work: a kernel
/// cannot throw).
void check_targets(const int32_t* targets, int rows, int vocab) {
  const Vector<const int32_t> t(targets, rows);
  Index first_bad = 0;  // the reducer starts from its identity, the largest Index
  Kokkos::parallel_reduce(
      "tessera::check_targets", flat(rows),
      KOKKOS_LAMBDA(const Index r, Index& first) {
        if ((t(r) < 0 || t(r) >= vocab) && r < first) first = r;
      },
      Kokkos::Min<Index>(first_bad));
  if (first_bad >= rows) return;
  int32_t target = 0;
  Kokkos::deep_copy(target, Kokkos::subview(t, first_bad));
  TESSERA_CHECK(false, "target " + std::to_string(target) + " of row " + std::to_string(first_bad) +
                           " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

}  // namespace

void KokkosBackend::softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                                          const int32_t* targets, int rows, int vocab, float z_loss,
                                          float grad_scale) {
  check_targets(targets, rows, vocab);
  const Matrix<const float> x(logits, rows, vocab);
  const Matrix<float> dx(d_logits, d_logits == nullptr ? 0 : rows, vocab);
  const bool gradient = d_logits != nullptr;
  const Vector<float> loss(losses, rows);
  const Vector<const int32_t> t(targets, rows);
  Kokkos::parallel_for(
      "tessera::softmax_cross_entropy", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const int target = t(r);
        const float target_logit = x(r, target);
        const float max =
            team_reduce<Largest, float>(team, vocab, [&](const Index j) { return x(r, j); });
        // The reduction above ends with the team synchronised: every thread has read the target
        // logit before any writes below.
        // exp(x - max), kept in d_logits for the gradient pass when there is one: the choice is
        // made per row, not per element, which would keep a host compiler from vectorising.
        const auto exponential = [&](const Index j) { return math::exp_approx(x(r, j) - max); };
        const double sum = gradient ? team_reduce<Plus, double>(team, vocab,
                                                                [&](const Index j) {
                                                                  const float e = exponential(j);
                                                                  dx(r, j) = e;
                                                                  return e;
                                                                })
                                    : team_reduce<Plus, double>(team, vocab, exponential);
        const float lse = max + static_cast<float>(math::log(sum));
        Kokkos::single(Kokkos::PerTeam(team),
                       [&]() { loss(r) = lse - target_logit + z_loss * lse * lse; });
        if (!gradient) return;
        // d loss / d x_j = softmax_j (1 + 2 z_loss lse) - [j == target].
        const float factor = static_cast<float>(grad_scale * (1.0f + 2.0f * z_loss * lse) / sum);
        team_for(team, vocab, [&](const Index j) {
          dx(r, j) = dx(r, j) * factor - (j == target ? grad_scale : 0.0f);
        });
      });
}

void KokkosBackend::cross_entropy_shard_stats(float* row_max, float* row_sum, float* target_logit,
                                              const float* logits, const int32_t* targets, int rows,
                                              int vocab_local, int vocab_begin) {
  const Matrix<const float> x(logits, rows, vocab_local);
  const Vector<float> maxima(row_max, rows), sums(row_sum, rows), target_logits(target_logit, rows);
  const Vector<const int32_t> t(targets, rows);
  Kokkos::parallel_for(
      "tessera::cross_entropy_shard_stats", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const float max =
            team_reduce<Largest, float>(team, vocab_local, [&](const Index j) { return x(r, j); });
        const double sum = team_reduce<Plus, double>(
            team, vocab_local, [&](const Index j) { return math::exp_approx(x(r, j) - max); });
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          maxima(r) = max;
          sums(r) = static_cast<float>(sum);
          const int local_target = t(r) - vocab_begin;
          const bool held_here = local_target >= 0 && local_target < vocab_local;
          target_logits(r) = held_here ? x(r, local_target) : 0.0f;
        });
      });
}

void KokkosBackend::rebase_row_sums(float* row_sum, const float* row_max, const float* global_max,
                                    int rows) {
  const Vector<float> sums(row_sum, rows);
  const Vector<const float> local(row_max, rows), global(global_max, rows);
  Kokkos::parallel_for(
      "tessera::rebase_row_sums", flat(rows),
      KOKKOS_LAMBDA(const Index r) { sums(r) *= math::exp_approx(local(r) - global(r)); });
}

void KokkosBackend::cross_entropy_shard_finish(float* losses, float* d_logits, const float* logits,
                                               const int32_t* targets, const float* global_max,
                                               const float* global_sum, const float* target_logit,
                                               int rows, int vocab_local, int vocab_begin,
                                               float z_loss, float grad_scale) {
  const Matrix<const float> x(logits, rows, vocab_local);
  const Matrix<float> dx(d_logits, d_logits == nullptr ? 0 : rows, vocab_local);
  const bool gradient = d_logits != nullptr;
  const Vector<float> loss(losses, rows);
  const Vector<const float> maxima(global_max, rows), sums(global_sum, rows),
      target_logits(target_logit, rows);
  const Vector<const int32_t> t(targets, rows);
  Kokkos::parallel_for(
      "tessera::cross_entropy_shard_finish", row_teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const float lse = maxima(r) + math::log(sums(r));
        Kokkos::single(Kokkos::PerTeam(team),
                       [&]() { loss(r) = lse - target_logits(r) + z_loss * lse * lse; });
        if (!gradient) return;
        // d loss / d x_j = softmax_j (1 + 2 z_loss lse) - [j == target], for this shard's columns.
        const float factor = grad_scale * (1.0f + 2.0f * z_loss * lse);
        const int local_target = t(r) - vocab_begin;
        team_for(team, vocab_local, [&](const Index j) {
          dx(r, j) =
              math::exp_approx(x(r, j) - lse) * factor - (j == local_target ? grad_scale : 0.0f);
        });
      });
}

}  // namespace tessera::kokkos
