#include "train/trainer.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "io/data/data_loader.hpp"
#include "io/metrics/metrics.hpp"
#include "io/metrics/progress.hpp"
#include "model/transformer.hpp"
#include "optim/adamw.hpp"
#include "optim/lr_schedule.hpp"
#include "train/step_timer.hpp"

namespace tessera {
namespace {

constexpr int kTrainSlot = 0;
constexpr int kEvalSlot = 1;

/// Host-side token buffers for one microbatch.
struct TokenBatch {
  std::vector<int32_t> inputs, targets;
  TokenBatch(int batch, int seq)
      : inputs(static_cast<std::size_t>(batch) * seq), targets(inputs.size()) {}
};

void write_resolved_config(const Config& config) {
  std::filesystem::create_directories(config.run.dir);
  std::ofstream out(config.run.dir / "config.toml");
  out << to_toml(config);
  if (!out) throw UsageError("cannot write " + (config.run.dir / "config.toml").string() +
                             "; check that run.dir is writable");
}

double evaluate(Transformer& model, const DataLoader& data, const Config& config,
                TokenBatch& tokens) {
  const int batch = config.train.micro_batch, seq = config.model.seq_len;
  double sum = 0.0;
  for (int b = 0; b < config.eval.batches; ++b) {
    data.read(Split::validation, static_cast<int64_t>(b) * batch, batch, tokens.inputs.data(),
              tokens.targets.data());
    sum += model.forward(kEvalSlot, tokens.inputs.data(), tokens.targets.data(), batch, 0.0f);
  }
  return sum / (static_cast<double>(config.eval.batches) * batch * seq);
}

}  // namespace

TrainResult train(const Config& config, std::ostream& console) {
  const DataLoader data = DataLoader::open(config.data, config.model);
  if (config.eval.every > 0 && data.samples_per_epoch(Split::validation) == 0) {
    throw UsageError("data.source '" + config.data.source +
                     "' has no validation windows of seq_len + 1 tokens; re-run tessera prepare "
                     "with a larger --val-fraction, or set eval.every = 0");
  }
  write_resolved_config(config);
  console << "# tessera " << TESSERA_VERSION << ": resolved configuration\n"
          << to_toml(config) << "# data: " << data.describe() << "\n";

  std::unique_ptr<Backend> backend = make_cpu_backend();
  Transformer model(config.model, *backend);
  model.parameters().initialize(config.train.seed);
  AdamW optimizer(config.train, model.parameters(), *backend);
  MetricsWriter metrics(config.run.dir);
  ProgressDisplay progress(console,
                           choose_progress_style(config.log.progress, stdout_is_terminal()));

  TrainResult result;
  result.loss_floor = data.loss_floor();
  result.unigram_entropy = data.unigram_entropy();
  metrics.write({{"kind", "run"},
                 {"parameters", model.parameters().total_count()},
                 {"flops_per_token", model.flops_per_token()},
                 {"loss_floor", std::isnan(result.loss_floor) ? nlohmann::json(nullptr)
                                                              : nlohmann::json(result.loss_floor)},
                 {"unigram_entropy", result.unigram_entropy}});
  progress.message(fmt::format("model: {} parameters, {:.3g} FLOP/token; data loss floor {:.4f}",
                               model.parameters().total_count(), model.flops_per_token(),
                               result.loss_floor));

  const TrainConfig& train = config.train;
  const int seq = config.model.seq_len;
  const int accumulation = train.global_batch / train.micro_batch;
  const double tokens_per_step = static_cast<double>(train.global_batch) * seq;
  const float grad_scale = static_cast<float>(1.0 / tokens_per_step);
  TokenBatch tokens(train.micro_batch, seq);
  StepTimer run_timer;
  double timed_seconds = 0.0;

  for (int step = 1; step <= train.steps; ++step) {
    StepTimer step_timer;
    model.parameters().zero_gradients();
    double loss_sum = 0.0;
    for (int micro = 0; micro < accumulation; ++micro) {
      const int64_t first = static_cast<int64_t>(step - 1) * train.global_batch +
                            static_cast<int64_t>(micro) * train.micro_batch;
      data.read(Split::train, first, train.micro_batch, tokens.inputs.data(),
                tokens.targets.data());
      loss_sum += model.forward(kTrainSlot, tokens.inputs.data(), tokens.targets.data(),
                                train.micro_batch, grad_scale);
      model.backward(kTrainSlot);
    }
    const double grad_norm = std::sqrt(optimizer.gradient_sum_of_squares());
    const double lr = learning_rate(train, step);
    optimizer.step(step, lr, optimizer.clip_factor(grad_norm));
    const double loss = loss_sum / tokens_per_step;
    result.losses.push_back(loss);

    const double seconds = step_timer.seconds();
    if (step > 1) timed_seconds += seconds;  // the first step allocates: leave it out
    const double tokens_per_s = tokens_per_step / seconds;
    const double mfu = model.flops_per_token() * tokens_per_s / (config.log.peak_tflops * 1e12);
    if (step % config.log.every == 0 || step == train.steps) {
      const StepReport report{step, train.steps, loss, lr, grad_norm, tokens_per_s, mfu,
                              run_timer.seconds()};
      metrics.write(to_json(report));
      progress.update(report);
    }
    const bool eval_due = config.eval.every > 0 &&
                          (step % config.eval.every == 0 || step == train.steps);
    if (eval_due) {
      const double val_loss = evaluate(model, data, config, tokens);
      result.val_losses.push_back(val_loss);
      metrics.write({{"kind", "eval"}, {"step", step}, {"val_loss", val_loss}});
      progress.message(fmt::format("step {} | val_loss {:.4f}", step, val_loss));
    }
  }
  result.tokens_per_s =
      train.steps > 1 ? tokens_per_step * (train.steps - 1) / timed_seconds : 0.0;
  progress.finish();
  return result;
}

}  // namespace tessera
