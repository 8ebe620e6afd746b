#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "io/data/data_loader.hpp"
#include "io/metrics/metrics.hpp"
#include "io/metrics/progress.hpp"
#include "optim/lr_schedule.hpp"
#include "parallel/agreement.hpp"
#include "train/model_replica.hpp"
#include "train/pipeline_executor.hpp"
#include "train/step_timer.hpp"

namespace tessera {
namespace {

/// Host-side token buffers for the microbatches one rank runs in a step.
class StepTokens {
 public:
  StepTokens(int microbatches, int batch, int seq)
      : per_microbatch_(static_cast<std::size_t>(batch) * seq),
        inputs_(per_microbatch_ * microbatches),
        targets_(inputs_.size()) {}

  /// Reads `count` microbatches of `batch` global samples each, from `first_sample` on.
  void read(const DataLoader& data, Split split, int64_t first_sample, int count, int batch) {
    for (int m = 0; m < count; ++m) {
      data.read(split, first_sample + static_cast<int64_t>(m) * batch, batch,
                inputs_.data() + per_microbatch_ * m, targets_.data() + per_microbatch_ * m);
    }
  }
  MicrobatchTokens microbatch(int m) const {
    return {inputs_.data() + per_microbatch_ * m, targets_.data() + per_microbatch_ * m};
  }

 private:
  std::size_t per_microbatch_;
  std::vector<int32_t> inputs_, targets_;
};

StageSchedule schedule_for(const ParallelConfig& layout, int stages, int stage, int microbatches) {
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

/// Sums per-microbatch losses over the job in global microbatch order, so the figure is the
/// same bit for bit whatever the layout. Only one rank holds each microbatch's loss (the last
/// pipeline stage of tp rank 0 of its dp replica); the others contribute zeros.
double global_loss_sum(const std::vector<double>& local, ParallelContext& parallel, bool holder) {
  const auto microbatches = local.size();
  std::vector<double> all(microbatches * static_cast<std::size_t>(parallel.shape().dp), 0.0);
  if (holder) {
    const auto first = microbatches * static_cast<std::size_t>(parallel.coordinates().dp);
    std::copy(local.begin(), local.end(), all.begin() + static_cast<std::ptrdiff_t>(first));
  }
  parallel.world().all_reduce_sum_doubles(all.data(), all.size());
  double sum = 0.0;
  for (double loss : all) sum += loss;
  return sum;
}

/// Each pipeline stage's busy time (compute and tensor-parallel communication) and time blocked
/// waiting for a neighbour, as seen by the stage's first (tp 0, dp 0) rank.
struct StageTimes {
  std::vector<double> busy_s, wait_s;
  /// Idle over busy time of the slowest-waiting stage: what (p-1)/(v m) predicts.
  double bubble() const {
    double worst = 0.0;
    for (std::size_t s = 0; s < busy_s.size(); ++s) worst = std::max(worst, wait_s[s] / busy_s[s]);
    return worst;
  }
};

StageTimes gather_stage_times(const PipelineTimings& local, ParallelContext& parallel) {
  const auto stages = static_cast<std::size_t>(parallel.shape().pp);
  std::vector<double> both(2 * stages, 0.0);
  if (parallel.coordinates().tp == 0 && parallel.coordinates().dp == 0) {
    const auto stage = static_cast<std::size_t>(parallel.coordinates().pp);
    both[stage] = local.compute_s + local.tp_comm_s;
    both[stages + stage] = local.wait_s;
  }
  parallel.world().all_reduce_sum_doubles(both.data(), both.size());
  const auto middle = both.begin() + static_cast<std::ptrdiff_t>(stages);
  return {std::vector<double>(both.begin(), middle), std::vector<double>(middle, both.end())};
}

void write_resolved_config(const Config& config) {
  std::error_code error;
  std::filesystem::create_directories(config.run.dir, error);
  if (error) {
    throw UsageError("cannot create run.dir '" + config.run.dir.string() + "' (" +
                     error.message() + "); pick a writable directory with --set run.dir=PATH");
  }
  std::ofstream out(config.run.dir / "config.toml");
  out << to_toml(config);
  if (!out) {
    throw UsageError("cannot write " + (config.run.dir / "config.toml").string() +
                     "; check that run.dir is writable");
  }
}

}  // namespace

ParallelContext make_parallel_context(const Config& config) {
  int world_size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const ParallelConfig& p = config.parallel;
  LayoutDimensions dims;
  dims.n_heads = config.model.n_heads;
  dims.vocab_size = config.model.vocab_size;
  dims.ffn_hidden = config.model.ffn_hidden;
  dims.n_layers = config.model.n_layers;
  dims.global_batch = config.train.global_batch;
  dims.micro_batch = config.train.micro_batch;
  dims.chunks_per_stage = p.chunks_per_stage;
  const GridShape shape = validate_layout(world_size, GridShape{p.dp, p.tp, p.pp}, dims);
  return ParallelContext(MPI_COMM_WORLD, shape, GridOrder(p.order));
}

TrainResult train(const Config& config, std::ostream& console) {
  ParallelContext parallel = make_parallel_context(config);
  return train(config, console, parallel);
}

TrainResult train(const Config& config, std::ostream& console, ParallelContext& parallel) {
  const bool reporter = parallel.world_rank() == 0;
  std::optional<DataLoader> data_loader;
  std::optional<MetricsWriter> metrics;
  // Every rank opens the data; rank 0 also writes the run directory. A rank that fails alone
  // must still stop the others before any collective work starts.
  run_agreed(parallel.world(), [&] {
    data_loader.emplace(DataLoader::open(config.data, config.model));
    if (config.eval.every > 0 && data_loader->samples_per_epoch(Split::validation) == 0) {
      throw UsageError("data.source '" + config.data.source +
                       "' has no validation windows of seq_len + 1 tokens; re-run tessera "
                       "prepare with a larger --val-fraction, or set eval.every = 0");
    }
    if (reporter) {
      write_resolved_config(config);
      metrics.emplace(config.run.dir);
    }
  });
  const DataLoader& data = *data_loader;
  std::ostream null_stream(nullptr);
  std::ostream& out = reporter ? console : null_stream;
  out << "# tessera " << TESSERA_VERSION << ": resolved configuration\n"
      << to_toml(config) << "# data: " << data.describe() << "\n";

  std::unique_ptr<Backend> backend = make_cpu_backend();
  ModelReplica replica(config, *backend, parallel);
  replica.initialize(config.train.seed);
  const int stages = parallel.shape().pp, stage = parallel.coordinates().pp;
  const int dp = parallel.shape().dp, dp_rank = parallel.coordinates().dp;
  PipelineExecutor executor(replica.chunks(), &parallel.pp(), stage, stages, *backend);
  ProgressDisplay progress(out, choose_progress_style(config.log.progress, stdout_is_terminal()));

  const TrainConfig& train = config.train;
  const int seq = config.model.seq_len, batch = train.micro_batch;
  const int microbatches = train.global_batch / (batch * dp);  // per dp replica
  const double tokens_per_step = static_cast<double>(train.global_batch) * seq;
  const float grad_scale = static_cast<float>(1.0 / tokens_per_step);
  const double flops_per_token = model_flops_per_token(config.model);
  const StageSchedule schedule = schedule_for(config.parallel, stages, stage, microbatches);
  // The rank that holds each microbatch's loss: last pipeline stage, tensor-parallel rank 0.
  const bool loss_holder = stage == stages - 1 && parallel.coordinates().tp == 0;

  TrainResult result;
  result.loss_floor = data.loss_floor();
  result.unigram_entropy = data.unigram_entropy();
  if (metrics) {
    metrics->write({{"kind", "run"},
                    {"layout", fmt::format("dp={} tp={} pp={}", dp, parallel.shape().tp, stages)},
                    {"flops_per_token", flops_per_token},
                    {"loss_floor", std::isnan(result.loss_floor) ? nlohmann::json(nullptr)
                                                                 : nlohmann::json(result.loss_floor)},
                    {"unigram_entropy", result.unigram_entropy}});
  }
  progress.message(fmt::format(
      "layout dp={} tp={} pp={} ({} ranks); {} microbatches of {} per replica per step; "
      "{:.3g} FLOP/token; data loss floor {:.4f}",
      dp, parallel.shape().tp, stages, parallel.world().size(), microbatches, batch,
      flops_per_token, result.loss_floor));

  StepTokens tokens(microbatches, batch, seq);
  const int eval_batches = config.eval.batches;
  StepTokens eval_tokens(eval_batches, batch, seq);
  StepTimer run_timer;
  double timed_seconds = 0.0;

  for (int step = 1; step <= train.steps; ++step) {
    StepTimer step_timer;
    // This replica's share of the step: global microbatches dp_rank * m .. dp_rank * m + m - 1.
    const int64_t first_sample = static_cast<int64_t>(step - 1) * train.global_batch +
                                 static_cast<int64_t>(dp_rank) * microbatches * batch;
    tokens.read(data, Split::train, first_sample, microbatches, batch);
    replica.zero_gradients();
    const std::vector<double> losses =
        executor.run_step(schedule, microbatches, batch, grad_scale,
                          [&](int m) { return tokens.microbatch(m); }, replica.step_hooks());
    const double lr = learning_rate(train, step);
    const UpdateResult update = replica.reduce_and_update(step, lr);
    const double loss = global_loss_sum(losses, parallel, loss_holder) / tokens_per_step;
    result.losses.push_back(loss);
    const PipelineTimings pipeline = executor.take_timings();

    const double seconds = step_timer.seconds();
    if (step > 1) timed_seconds += seconds;  // the first step allocates: leave it out
    const double tokens_per_s = tokens_per_step / seconds;
    const double mfu = flops_per_token * tokens_per_s /
                       (config.log.peak_tflops * 1e12 * parallel.world().size());
    if (step % config.log.every == 0 || step == train.steps) {
      const StageTimes stage_times = gather_stage_times(pipeline, parallel);
      const StepReport report{step, train.steps, loss, lr, update.grad_norm, tokens_per_s, mfu,
                              run_timer.seconds()};
      if (metrics) {
        nlohmann::json record = to_json(report);
        record["time_compute_s"] = pipeline.compute_s;
        record["time_tp_comm_s"] = pipeline.tp_comm_s;
        record["time_pipeline_wait_s"] = pipeline.wait_s;
        record["time_dp_wait_s"] = update.timings.dp_wait_s;
        record["time_optimizer_s"] = update.timings.optimizer_s;
        if (stages > 1) {
          record["stage_busy_s"] = stage_times.busy_s;
          record["stage_wait_s"] = stage_times.wait_s;
          record["bubble_measured"] = stage_times.bubble();
          record["bubble_theoretical"] =
              theoretical_bubble_fraction(stages, microbatches, config.parallel.chunks_per_stage);
        }
        metrics->write(record);
      }
      progress.update(report);
    }
    const bool eval_due =
        config.eval.every > 0 && (step % config.eval.every == 0 || step == train.steps);
    if (eval_due) {
      // Every replica evaluates the same validation samples; replica 0's losses are reported.
      eval_tokens.read(data, Split::validation, 0, eval_batches, batch);
      const std::vector<double> eval_losses = executor.run_forward(
          eval_batches, batch, [&](int m) { return eval_tokens.microbatch(m); });
      const double val_loss =
          global_loss_sum(eval_losses, parallel, loss_holder && dp_rank == 0) /
          (static_cast<double>(eval_batches) * batch * seq);
      result.val_losses.push_back(val_loss);
      if (metrics) metrics->write({{"kind", "eval"}, {"step", step}, {"val_loss", val_loss}});
      progress.message(fmt::format("step {} | val_loss {:.4f}", step, val_loss));
      executor.take_timings();
    }
  }
  result.tokens_per_s =
      train.steps > 1 ? tokens_per_step * (train.steps - 1) / timed_seconds : 0.0;
  if (metrics) {
    // The parameters rank 0 holds (all of them without tensor or pipeline parallelism), for
    // comparing runs bit for bit.
    metrics->write({{"kind", "final"},
                    {"step", train.steps},
                    {"parameter_checksum", replica.parameter_checksum()}});
  }
  progress.finish();
  return result;
}

}  // namespace tessera
