#include "parallel/layout/training_layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "parallel/layout/stage_balance.hpp"

namespace tessera {
namespace {

std::string divisors_of(int n) {
  std::string listed;
  for (int d = 1; d <= n; ++d) {
    if (n % d == 0) listed += (listed.empty() ? "" : ", ") + std::to_string(d);
  }
  return listed;
}

void check_divides(int tp, std::string_view key, int value) {
  if (value % tp == 0) return;
  throw UsageError(
      fmt::format("parallel.tp = {} does not divide {} = {}; pick a divisor of {} ({})", tp, key,
                  value, value, divisors_of(value)));
}

void check_schedule(const ParallelConfig& parallel) {
  const bool interleaved = parallel.schedule == PipelineScheduleKind::interleaved;
  if (parallel.chunks_per_stage > 1 && !interleaved) {
    throw UsageError(fmt::format(
        "parallel.chunks_per_stage = {} needs parallel.schedule = \"interleaved\"; set it, or "
        "chunks_per_stage = 1",
        parallel.chunks_per_stage));
  }
  if (interleaved && parallel.chunks_per_stage < 2) {
    throw UsageError(
        "parallel.schedule = \"interleaved\" needs parallel.chunks_per_stage >= 2 virtual stages "
        "per rank; set chunks_per_stage, or use schedule = \"1f1b\"");
  }
}

/// Sequence parallelism gives each tp rank 1/tp of a microbatch's rows.
void check_sequence_parallel(const Config& config, int micro_batch, int tp) {
  const int64_t rows = static_cast<int64_t>(micro_batch) * config.model.seq_len;
  if (!config.parallel.sequence_parallel || tp == 1 || rows % tp == 0) return;
  throw UsageError(fmt::format(
      "parallel.sequence_parallel splits the {} rows of a microbatch (train.micro_batch * "
      "model.seq_len) over parallel.tp = {} ranks, which does not divide them",
      rows, tp));
}

/// With dp derived from the job size (an elastic job), the batch follows the ranks: the global
/// batch stays (so the run trains the same model on any number of nodes) and the microbatch
/// shrinks to the largest that splits it evenly over the dp replicas. Only when dp does not
/// divide the global batch at all is there no way to keep it.
int micro_batch_for_replicas(const TrainConfig& train, const GridShape& shape) {
  const int dp = shape.dp, model_ranks = shape.tp * shape.pp;
  if (train.global_batch % dp != 0) {
    std::string working;
    for (int d = 1; d <= train.global_batch && d <= 4 * dp; ++d) {
      if (train.global_batch % d != 0) continue;
      working += fmt::format("{}{} (dp {})", working.empty() ? "" : ", ", d * model_ranks, d);
    }
    throw UsageError(fmt::format(
        "train.global_batch = {} cannot be shared by dp = {} replicas ({} ranks / tp x pp = {}); "
        "run on one of these rank counts: {}, or make train.global_batch a multiple of {}",
        train.global_batch, dp, dp * model_ranks, model_ranks, working, dp));
  }
  const int per_replica = train.global_batch / dp;
  int micro_batch = std::min(train.micro_batch, per_replica);
  while (per_replica % micro_batch != 0) --micro_batch;
  return micro_batch;
}

}  // namespace

GridShape validate_layout(int world_size, GridShape shape, const LayoutDimensions& dims) {
  shape = resolve_grid_shape(world_size, shape);
  check_divides(shape.tp, "model.n_heads", dims.n_heads);
  check_divides(shape.tp, "model.ffn_hidden", dims.ffn_hidden);
  check_divides(shape.tp, "model.vocab_size", dims.vocab_size);
  const int virtual_stages = shape.pp * dims.chunks_per_stage;
  if (virtual_stages > dims.n_layers) {
    throw UsageError(
        dims.chunks_per_stage == 1
            ? fmt::format("parallel.pp = {} exceeds model.n_layers = {}; pick pp <= {} so every "
                          "stage holds a layer",
                          shape.pp, dims.n_layers, dims.n_layers)
            : fmt::format("parallel.pp x chunks_per_stage = {} x {} = {} exceeds model.n_layers "
                          "= {}; every virtual stage needs a layer: lower pp or chunks_per_stage",
                          shape.pp, dims.chunks_per_stage, virtual_stages, dims.n_layers));
  }
  if (dims.micro_batch < 1) {
    throw UsageError(fmt::format("train.micro_batch = {} must be at least 1", dims.micro_batch));
  }
  const int per_step = dims.micro_batch * shape.dp;
  if (dims.global_batch < per_step || dims.global_batch % per_step != 0) {
    throw UsageError(fmt::format(
        "train.global_batch = {} is not divisible by train.micro_batch x dp = {} x {}; pick a "
        "multiple of {} or a smaller micro_batch",
        dims.global_batch, dims.micro_batch, shape.dp, per_step));
  }
  return shape;
}

TrainingLayout resolve_layout(const Config& config, int world_size) {
  const ParallelConfig& parallel = config.parallel;
  check_schedule(parallel);
  LayoutDimensions dims{.n_heads = config.model.n_heads,
                        .vocab_size = config.model.vocab_size,
                        .ffn_hidden = config.model.ffn_hidden,
                        .n_layers = config.model.n_layers,
                        .global_batch = config.train.global_batch,
                        .micro_batch = config.train.micro_batch,
                        .chunks_per_stage = parallel.chunks_per_stage};
  TrainingLayout layout;
  layout.shape = resolve_grid_shape(world_size, {parallel.dp, parallel.tp, parallel.pp});
  if (parallel.dp == 0 && dims.micro_batch >= 1) {
    dims.micro_batch = micro_batch_for_replicas(config.train, layout.shape);
  }
  layout.shape = validate_layout(world_size, layout.shape, dims);
  check_sequence_parallel(config, dims.micro_batch, layout.shape.tp);
  layout.order = GridOrder(parallel.order);
  layout.micro_batch = dims.micro_batch;
  layout.micro_batches = config.train.global_batch / (dims.micro_batch * layout.shape.dp);
  layout.schedule = parallel.schedule;
  layout.chunks_per_stage = parallel.chunks_per_stage;
  layout.sequence_parallel = parallel.sequence_parallel;
  layout.stage_bounds = stage_bounds(config.model, parallel, layout.virtual_stages());
  return layout;
}

Config run_config(Config config, const TrainingLayout& layout) {
  config.train.micro_batch = layout.micro_batch;
  return config;
}

std::optional<std::string> batch_fit_note(const Config& config, const TrainingLayout& layout) {
  if (layout.micro_batch == config.train.micro_batch) return std::nullopt;
  return fmt::format(
      "train.micro_batch {} -> {}: parallel.dp = auto gives dp = {} on these ranks, and "
      "train.global_batch = {} is kept ({} microbatches of {} per replica per step)",
      config.train.micro_batch, layout.micro_batch, layout.shape.dp, config.train.global_batch,
      layout.micro_batches, layout.micro_batch);
}

std::vector<StageChunk> chunks_of(const TrainingLayout& layout, int stage) {
  std::vector<StageChunk> chunks;
  const int virtual_stages = layout.virtual_stages();
  for (int c = 0; c < layout.chunks_per_stage; ++c) {
    const int k = c * layout.shape.pp + stage;
    const auto index = static_cast<std::size_t>(k);
    chunks.push_back({layout.stage_bounds.at(index), layout.stage_bounds.at(index + 1), k == 0,
                      k == virtual_stages - 1});
  }
  return chunks;
}

StageSchedule schedule_for(const TrainingLayout& layout, int stage) {
  const int stages = layout.shape.pp, microbatches = layout.micro_batches;
  switch (layout.schedule) {
    case PipelineScheduleKind::gpipe:
      return gpipe_schedule(stages, stage, microbatches);
    case PipelineScheduleKind::interleaved:
      return interleaved_schedule(stages, stage, microbatches, layout.chunks_per_stage);
    case PipelineScheduleKind::one_f_one_b:
      break;
  }
  return one_f_one_b_schedule(stages, stage, microbatches);
}

}  // namespace tessera
