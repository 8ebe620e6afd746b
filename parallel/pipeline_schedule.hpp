// Pipeline schedules as tables: for one stage, the ordered list of compute actions it runs in
// one optimizer step. Pure functions; an executor runs the table.
//
// Terms. `stages` (p) ranks form a pipeline; each holds `chunks_per_stage` (v) model chunks.
// The model's layers are cut into p x v consecutive pieces, the virtual stages; chunk c of
// stage s is virtual stage c * p + s (Megatron's interleaving: stage 0 holds pieces 0, p, 2p,
// ...). Without interleaving v = 1 and chunk = 0. A step runs `microbatches` (m) microbatches.
//
// Communication is implied by the table, not listed in it: after the forward of virtual stage
// k the activation goes to the owner of k + 1; after the backward of k the input gradient goes
// to the owner of k - 1. An explicit send/recv entry would only restate that, and when to
// post receives is the executor's choice (early, for overlap). The tables are free of deadlock
// when sends do not wait for the matching receive: the executor must use send_async (or post
// every receive before it blocks), since in 1F1B's steady state neighbouring stages both send
// before they receive. `simulate_pipeline` checks exactly this execution model.
#pragma once

#include <vector>

namespace tessera {

enum class ActionKind { forward, backward };

struct Action {
  ActionKind kind = ActionKind::forward;
  int microbatch = 0;
  int chunk = 0;  ///< the model chunk on this stage, 0 <= chunk < chunks_per_stage
  bool operator==(const Action&) const = default;
};

using StageSchedule = std::vector<Action>;

/// GPipe: every forward (microbatch 0..m-1), then every backward in the same order. Holds the
/// activations of all m microbatches.
StageSchedule gpipe_schedule(int stages, int stage, int microbatches);

/// 1F1B (PipeDream-flush): min(stages - stage - 1, m) warm-up forwards, then alternately one
/// forward and one backward, then the remaining backwards. At most stages - stage microbatches
/// are in flight (forward done, backward not yet) on a stage. Any m >= 1.
StageSchedule one_f_one_b_schedule(int stages, int stage, int microbatches);

/// Megatron-style interleaved 1F1B with v = chunks_per_stage chunks per stage. Microbatches go
/// through the chunks in groups of p: forwards of microbatches 0..p-1 on chunk 0, then the
/// same on chunk 1, ..., then microbatches p..2p-1 on chunk 0; backwards likewise, chunks in
/// reverse. Warm-up: min(2 (p - stage - 1) + (v - 1) p, m v) forwards. Requires m % p == 0
/// (whole groups), else throws UsageError. v = 1 gives one_f_one_b_schedule.
StageSchedule interleaved_schedule(int stages, int stage, int microbatches, int chunks_per_stage);

/// The most microbatches of each chunk in flight at once (forward done, backward not yet) as
/// `schedule` runs: the activation slots a stage holds per chunk. One entry per chunk.
std::vector<int> peak_in_flight(const StageSchedule& schedule, int chunks_per_stage);

/// The bubble of a pipeline step relative to its useful work, for p stages, m microbatches and
/// v chunks per stage: with per-microbatch forward and backward times t_f and t_b of a whole
/// stage, each stage computes for m (t_f + t_b) and idles (p - 1)(t_f + t_b) / v, so
///   bubble fraction = idle time / compute time = (p - 1) / (v m)
/// (Narayanan et al. 2021). Exact for GPipe and 1F1B; for interleaving it is the paper's value.
double theoretical_bubble_fraction(int stages, int microbatches, int chunks_per_stage = 1);

/// Timing of a whole pipeline (one table per stage) under the executor's model: a stage runs
/// its table in order; an action starts when the stage is free and its inputs have arrived
/// (forward of virtual stage k after the forward of k - 1 of the same microbatch; backward of k
/// after the backward of k + 1, and after its own forward); transfers take no time.
struct PipelineSimulation {
  bool completed = false;     ///< false: some action's input never arrives (deadlock)
  double makespan = 0;        ///< time from the first action to the last
  double busy_per_stage = 0;  ///< compute time of one stage (all stages are equal)
  /// (makespan - busy_per_stage) / busy_per_stage: comparable to theoretical_bubble_fraction
  double bubble_fraction = 0;
};

/// Simulates `tables[stage]` for every stage with the given costs per chunk (a whole stage's
/// forward then costs forward_cost x v). Throws InternalError for a malformed table.
PipelineSimulation simulate_pipeline(const std::vector<StageSchedule>& tables, int chunks_per_stage,
                                     double forward_cost = 1.0, double backward_cost = 2.0);

}  // namespace tessera
