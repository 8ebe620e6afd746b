#include "plan/layout_candidates.hpp"

#include "core/error.hpp"

namespace tessera {
namespace {

std::vector<int> divisors(int n) {
  std::vector<int> found;
  for (int d = 1; d <= n; ++d) {
    if (n % d == 0) found.push_back(d);
  }
  return found;
}

/// The pipeline schedules worth listing for pp stages: (schedule, chunks per stage).
std::vector<std::pair<PipelineScheduleKind, int>> schedules(int pp, bool vary,
                                                            const ParallelConfig& base) {
  if (!vary) return {{base.schedule, base.chunks_per_stage}};
  if (pp == 1) return {{PipelineScheduleKind::one_f_one_b, 1}};
  return {{PipelineScheduleKind::one_f_one_b, 1},
          {PipelineScheduleKind::gpipe, 1},
          {PipelineScheduleKind::interleaved, 2}};
}

/// Adds `config` when it resolves to a layout whose every stage has a schedule.
void add_if_valid(const Config& config, int world_size, std::vector<LayoutCandidate>& out) {
  try {
    TrainingLayout layout = resolve_layout(config, world_size);
    // The planner chooses micro-batches itself; one that an elastic layout (dp auto) would
    // lower is another candidate's, or fixed by the user.
    if (layout.micro_batch != config.train.micro_batch) return;
    for (int stage = 0; stage < layout.shape.pp; ++stage) schedule_for(layout, stage);
    out.push_back({config, std::move(layout)});
  } catch (const UsageError&) {
    // Not a layout this model and batch can run: not a candidate.
  }
}

}  // namespace

std::vector<LayoutCandidate> enumerate_layouts(const Config& base, int world_size,
                                               const CandidateLimits& limits) {
  std::vector<LayoutCandidate> found;
  const std::vector<Recompute> recomputes =
      limits.vary_recompute
          ? std::vector<Recompute>{Recompute::none, Recompute::selective, Recompute::full}
          : std::vector<Recompute>{base.train.recompute};
  for (int tp : divisors(world_size)) {
    if (tp > limits.max_tp) continue;
    for (int pp : divisors(world_size / tp)) {
      const int dp = world_size / (tp * pp);
      if (base.train.global_batch % dp != 0) continue;
      const std::vector<int> micro_batches = limits.vary_micro_batch
                                                 ? divisors(base.train.global_batch / dp)
                                                 : std::vector<int>{base.train.micro_batch};
      const std::vector<int> zeros = limits.vary_zero && dp > 1
                                         ? std::vector<int>{0, 1}
                                         : std::vector<int>{base.parallel.zero};
      for (int micro_batch : micro_batches) {
        for (Recompute recompute : recomputes) {
          for (int zero : zeros) {
            for (auto [schedule, chunks] : schedules(pp, limits.vary_schedule, base.parallel)) {
              Config config = base;
              config.parallel.dp = base.parallel.dp == 0 ? 0 : dp;  // 0 derives the same dp
              config.parallel.tp = tp;
              config.parallel.pp = pp;
              config.parallel.zero = zero;
              config.parallel.schedule = schedule;
              config.parallel.chunks_per_stage = chunks;
              if (pp != base.parallel.pp || chunks != base.parallel.chunks_per_stage) {
                config.parallel.stage_layers.clear();  // balanced by cost
              }
              if (tp > 1) config.parallel.sequence_parallel = true;
              config.train.micro_batch = micro_batch;
              config.train.recompute = recompute;
              add_if_valid(config, world_size, found);
            }
          }
        }
      }
    }
  }
  return found;
}

}  // namespace tessera
