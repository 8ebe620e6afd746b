// One home for "is this layout valid, and what are its stages?": the trainer, the job generator
// and the planner all take a run's whole parallel layout from resolve_layout, which checks it
// against the model and the batch before any work (no MPI needed).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "parallel/process_grid.hpp"

namespace tessera {

/// A run's parallel layout, checked and whole.
struct TrainingLayout {
  GridShape shape;  ///< dp x tp x pp, dp derived from the job size when 0
  GridOrder order;  ///< which axis varies fastest over ranks (parallel.order)
  /// Samples per microbatch: train.micro_batch, or less where dp is derived from the job size
  /// and the replicas could not otherwise share train.global_batch (see resolve_layout).
  int micro_batch = 1;
  int micro_batches = 1;  ///< microbatches per dp replica and step
  PipelineScheduleKind schedule = PipelineScheduleKind::one_f_one_b;
  int chunks_per_stage = 1;        ///< virtual stages per pipeline rank (interleaved schedule)
  bool sequence_parallel = false;  ///< norms and dropout on 1/tp of the rows
  /// Virtual stage k = chunk x pp + pipeline rank holds blocks [stage_bounds[k],
  /// stage_bounds[k + 1]); virtual_stages() + 1 entries from 0 to model.n_layers.
  std::vector<int> stage_bounds;

  int virtual_stages() const { return shape.pp * chunks_per_stage; }
};

/// The layout `config` resolves to on `world_size` ranks. Throws UsageError with one line
/// naming the numbers and the fix when it cannot run: the grid against the job size, tp against
/// the heads, the MLP and the vocabulary, stages against the layers (parallel.stage_layers
/// included), the batch split, sequence parallelism, the schedule against chunks_per_stage.
///
/// With parallel.dp = 0 (auto: an elastic job, requeued on fewer or more nodes) the global batch
/// is kept whatever dp the ranks give: when train.micro_batch x dp does not divide it, the
/// layout's micro_batch is the largest smaller one that does (more accumulation per replica);
/// when dp does not divide it at all, the error names the rank counts that work.
TrainingLayout resolve_layout(const Config& config, int world_size);

/// `config` as `layout` runs it: train.micro_batch is the layout's.
Config run_config(Config config, const TrainingLayout& layout);

/// One line saying how and why the layout's micro_batch differs from the configured one (none
/// when it does not).
std::optional<std::string> batch_fit_note(const Config& config, const TrainingLayout& layout);

/// One virtual stage that a pipeline rank computes: blocks [first_layer, end_layer); the first
/// virtual stage also embeds the tokens, the last ends in the final norm and the head.
struct StageChunk {
  int first_layer = 0;
  int end_layer = 0;
  bool first = false;
  bool last = false;
  int blocks() const { return end_layer - first_layer; }
};

/// The chunks pipeline rank `stage` holds, chunk c being virtual stage c x pp + stage.
std::vector<StageChunk> chunks_of(const TrainingLayout& layout, int stage);

/// Pipeline stage `stage`'s table for the layout's schedule, stages and microbatches.
StageSchedule schedule_for(const TrainingLayout& layout, int stage);

/// The model and batch sizes a layout must divide.
struct LayoutDimensions {
  int n_heads = 1;
  int vocab_size = 1;
  int ffn_hidden = 1;  ///< the resolved width (not 0)
  int n_layers = 1;
  int global_batch = 1;
  int micro_batch = 1;
  int chunks_per_stage = 1;  ///< virtual pipeline stages per rank (interleaved schedule)
};

/// The grid part of resolve_layout, from sizes alone (the planner enumerates with it): checks
/// that the layout can run this model and batch and returns the resolved shape, or throws
/// UsageError, e.g. "parallel.tp = 3 does not divide model.n_heads = 16; pick a divisor of 16".
/// Tensor parallelism splits heads, the MLP's hidden layer and the vocabulary (vocab-parallel
/// embedding and cross-entropy) into tp equal parts; pipeline parallelism gives each of the
/// pp x chunks_per_stage virtual stages at least one layer; every dp rank runs
/// global_batch / (micro_batch x dp) microbatches per step.
GridShape validate_layout(int world_size, GridShape shape, const LayoutDimensions& dims);

}  // namespace tessera
