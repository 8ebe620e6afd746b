#include "train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <thread>
#include <utility>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "core/json_file.hpp"
#include "io/data/data_loader.hpp"
#include "io/manifest/manifest.hpp"
#include "io/metrics/metrics.hpp"
#include "io/metrics/progress.hpp"
#include "optim/lr_schedule.hpp"
#include "parallel/agreement.hpp"
#include "parallel/hang_watchdog.hpp"
#include "plan/measured_run.hpp"
#include "train/backend_choice.hpp"
#include "train/checkpointing.hpp"
#include "train/memory_check.hpp"
#include "train/model_replica.hpp"
#include "train/pipeline_executor.hpp"
#include "train/preflight_checks.hpp"
#include "train/run_dir_lock.hpp"
#include "train/step_accounting.hpp"
#include "train/step_timer.hpp"
#include "train/stop_signals.hpp"

namespace tessera {
namespace {

void write_resolved_config(const Config& config) {
  std::error_code error;
  std::filesystem::create_directories(config.run.dir, error);
  if (error) {
    throw UsageError("cannot create run.dir '" + config.run.dir.string() + "' (" + error.message() +
                     "); pick a writable directory with --set run.dir=PATH");
  }
  std::ofstream out(config.run.dir / "config.toml");
  out << to_toml(config);
  if (!out) {
    throw UsageError("cannot write " + (config.run.dir / "config.toml").string() +
                     "; check that run.dir is writable");
  }
}

/// debug.stall_rank must name a rank of the job.
void check_stall_rank(const Config& config, int world_size) {
  if (config.debug.stall_at_step > 0 && config.debug.stall_rank >= world_size) {
    throw UsageError(
        fmt::format("debug.stall_rank = {} is not a rank of this job of {}; pick "
                    "one from 0 to {}",
                    config.debug.stall_rank, world_size, world_size - 1));
  }
}

}  // namespace

TrainResult train(const Config& config, std::ostream& console) {
  int world_size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const TrainingLayout layout = resolve_layout(config, world_size);
  check_stall_rank(config, world_size);
  ParallelContext parallel(MPI_COMM_WORLD, layout.shape, layout.order);
  return train(config, layout, console, parallel);
}

namespace {

/// Runs `work`; an internal failure in it is reported with the step and the phase, so that a
/// rank that fails alone says what it was doing ("step 12 (training): ...").
template <class Work>
auto with_context(int step, const char* phase, Work&& work) {
  try {
    return work();
  } catch (const UsageError&) {
    throw;
  } catch (const ResourceError& error) {
    throw ResourceError(fmt::format("step {} ({}): {}", step, phase, error.what()));
  } catch (const std::exception& error) {
    throw InternalError(fmt::format("step {} ({}): {}", step, phase, error.what()));
  }
}

const char* environment_variable(const char* name) { return std::getenv(name); }

/// A run.deadline already passed would stop every (requeued) job after one step.
void check_deadline(int64_t deadline) {
  const double now = unix_time_now();
  if (deadline > 0 && static_cast<double>(deadline) <= now) {
    throw UsageError(fmt::format(
        "run.deadline = {} is {:.0f} s in the past; set the job's end as a future UNIX time "
        "(e.g. $(date -d '+2 hours' +%s)), or 0 to ask Slurm",
        deadline, now - static_cast<double>(deadline)));
  }
}

/// The job's end time: rank 0 looks it up (squeue is asked once per job, not once per rank)
/// and every rank gets its value; `source` is rank 0's only.
JobEndTime agreed_end_time(const Config& config, Communicator& world) {
  JobEndTime found;
  if (world.rank() == 0) {
    found = find_job_end_time(config.run.deadline, environment_variable, run_squeue);
  }
  const double mine = world.rank() == 0 && found.unix_time ? *found.unix_time : -1.0;
  const double agreed = world.all_reduce_max_double(mine);
  found.unix_time = agreed > 0 ? std::optional<double>(agreed) : std::nullopt;
  return found;
}

/// The line and metrics.jsonl "reason" of an early stop.
const char* stop_reason_name(StopReason reason) {
  return reason == StopReason::signal ? "signal" : "time_limit";
}

/// One training run on this rank: set up in the constructor, `run` trains, evaluates and logs.
class TrainingRun {
 public:
  TrainingRun(const Config& config, const TrainingLayout& layout, std::ostream& console,
              ParallelContext& parallel);
  TrainResult run();

 private:
  void open_data_and_run_dir();
  void announce();
  /// Trains optimizer step `step`; returns the loss and records its timings.
  double train_step(int step, UpdateResult& update, PipelineTimings& pipeline);
  void log_step(const StepReport& report, const UpdateResult& update,
                const PipelineTimings& pipeline);
  double evaluate();
  /// Sets up the early stop: the job's end time and the save-time estimate.
  void prepare_stop(double restore_s);
  /// Writes manifest.json (a new one, or this start appended to it) and hands it to the
  /// checkpoints. Collective (host names).
  void record_manifest();
  /// The end of step `step` (which took `step_s`): one collective agrees on the checkpoint
  /// interval, stop signals and the time limit; saves when due. True when the run stops here.
  bool end_step(int step, int last_step, double step_s);
  /// Whether to save after `step`: every checkpoint.every steps, once checkpoint.every_minutes
  /// have passed on any rank (`agreed`), and after the last step.
  bool checkpoint_due(int step, int last_step, const BoundaryReadings& agreed) const;
  /// After the stop's checkpoint: waits for it, logs the stop, records it in metrics.jsonl.
  void stop_early(int step, const StopDecision& stop);
  /// Logs finished saves: the time training was blocked next to the whole write's.
  void report_saves(const std::vector<SaveReport>& saves);
  /// After a step whose update was skipped (non-finite loss or gradient norm): logs it, counts
  /// it; true when train.max_bad_steps such steps in a row end the run (after logging that).
  bool bad_step_ends_run(int step, double loss, const UpdateResult& update);
  /// Logs the memory the run took, the largest of any rank, and records it in metrics.jsonl.
  void report_memory(int step);
  /// Rank 0: run.dir/result.json, the medians of the steps' times and the memory peak
  /// (plan/measured_run.hpp), for a sweep's report; a warning, not a failure, when it cannot.
  void write_result(int steps_run);
  /// The memory plan's parts on its largest stage, by name, for metrics.jsonl.
  nlohmann::json planned_parts() const;
  /// After a resume: logs the settings that differ from the checkpoint's, once, and keeps them
  /// for the manifest.
  void report_changed_settings();
  /// debug.stall_at_step: this rank stops progressing, alive, until the watchdog ends the job.
  [[noreturn]] void stall_on_purpose(int step);
  /// Runs `work` as `phase` of `step`: the watchdog is told, and failures name the phase.
  template <class Work>
  auto in_phase(int step, const char* phase, Work&& work) {
    watchdog_.mark(step, phase);
    return with_context(step, phase, std::forward<Work>(work));
  }

  const Config config_;  // as the layout runs it (run_config)
  const TrainingLayout& layout_;
  ParallelContext& parallel_;
  HangWatchdog watchdog_;  // first: setting up can hang too (a file system, a collective)
  StopSignals signals_;    // from before the restore: a signal then stops after the first step
  const bool reporter_;    // world rank 0 writes the run directory and the console
  std::ostream null_stream_{nullptr};
  std::ostream& out_;
  std::optional<DataLoader> data_;
  std::optional<RunDirLock> run_dir_lock_;  // rank 0's, before it writes anything there
  std::optional<MetricsWriter> metrics_;
  std::unique_ptr<Backend> backend_;
  MemoryPlan memory_plan_;  // what the buffers should peak at, reported beside what they did
  std::unique_ptr<ModelReplica> replica_;
  std::unique_ptr<PipelineExecutor> executor_;
  std::unique_ptr<TrainingCheckpoints> checkpoints_;
  int first_step_ = 1;          // after a resume, the step after the checkpoint's
  int bad_steps_in_a_row_ = 0;  // steps whose update was skipped, since the last good one
  nlohmann::json changed_settings_ = nlohmann::json::array();  // since the restored checkpoint
  StepTimer since_checkpoint_;
  std::optional<StopMonitor> stop_monitor_;
  std::unique_ptr<ProgressDisplay> progress_;
  const int stages_, stage_, dp_rank_;
  const double tokens_per_step_;
  const StageSchedule schedule_;
  const bool loss_holder_;  // last pipeline stage, tensor-parallel rank 0
  StepTokens tokens_, eval_tokens_;
  TrainResult result_;
  std::string data_check_;  // the log line of verify_token_shards, "" when nothing was checked
};

TrainingRun::TrainingRun(const Config& config, const TrainingLayout& layout, std::ostream& console,
                         ParallelContext& parallel)
    : config_(run_config(config, layout)),
      layout_(layout),
      parallel_(parallel),
      watchdog_(parallel.world_handle(),
                {config.train.hang_timeout_s, kHungExit, "train.hang_timeout_s"}),
      reporter_(parallel.world_rank() == 0),
      out_(reporter_ ? console : null_stream_),
      stages_(parallel.shape().pp),
      stage_(parallel.coordinates().pp),
      dp_rank_(parallel.coordinates().dp),
      tokens_per_step_(static_cast<double>(config.train.global_batch) * config.model.seq_len),
      schedule_(schedule_for(layout, stage_)),
      loss_holder_(stage_ == stages_ - 1 && parallel.coordinates().tp == 0),
      tokens_(layout.micro_batches, layout.micro_batch, config.model.seq_len),
      eval_tokens_(config.eval.batches, layout.micro_batch, config.model.seq_len) {
  watchdog_.mark(0, "opening the data and run.dir");
  open_data_and_run_dir();
  watchdog_.mark(0, "setting up the backend and the model");
  backend_ = make_training_backend(config_, parallel_);
  TESSERA_CHECK(layout_.shape == parallel_.shape(), "the process grid is the layout's");
  memory_plan_ = check_memory_fits(config_, layout_, *backend_, parallel_);
  replica_ = std::make_unique<ModelReplica>(config_, layout_, *backend_, parallel_);
  replica_->initialize(config_.train.seed);
  executor_ = std::make_unique<PipelineExecutor>(replica_->chunks(), &parallel_.pp(), stage_,
                                                 stages_, *backend_);
  checkpoints_ =
      std::make_unique<TrainingCheckpoints>(config_, parallel_, *replica_, *backend_, *data_);
  std::vector<std::string> warnings;
  StepTimer restoring;
  watchdog_.mark(0, "restoring the checkpoint");
  first_step_ = checkpoints_->restore([&](const std::string& w) { warnings.push_back(w); }) + 1;
  const double restore_s = first_step_ > 1 ? restoring.seconds() : 0.0;
  if (metrics_ && first_step_ > 1) {
    metrics_->write({{"kind", "restore"},
                     {"step", first_step_ - 1},
                     {"seconds", restore_s},
                     {"bytes", checkpoints_->restored_bytes()}});
  }
  progress_ = std::make_unique<ProgressDisplay>(
      out_, choose_progress_style(config_.log.progress, stdout_is_terminal()), first_step_ - 1);
  for (const std::string& warning : warnings) progress_->message("warning: " + warning);
  if (const std::optional<std::string> note = batch_fit_note(config, layout)) {
    progress_->message("note: " + *note);
  }
  if (first_step_ > 1) {
    progress_->message(fmt::format("resumed from the checkpoint after step {} in {}",
                                   first_step_ - 1, checkpoint_directory(config_).string()));
    report_changed_settings();
  }
  if (first_step_ > config_.train.steps) {
    progress_->message(
        fmt::format("nothing to do: the run already finished its {} steps; "
                    "remove {} or pick another run.dir to train again",
                    config_.train.steps, checkpoint_directory(config_).string()));
  }
  watchdog_.mark(first_step_ - 1, "recording the manifest and the job's end time");
  record_manifest();
  prepare_stop(restore_s);
}

void TrainingRun::prepare_stop(double restore_s) {
  const JobEndTime end = agreed_end_time(config_, parallel_.world());
  // Before the first save is measured: this rank's state (values, m, v) at 100 MB/s, or the
  // restore (which reads and verifies the same bytes) when that took longer.
  constexpr double kAssumedSaveBytesPerS = 100e6;
  double state_bytes = 0.0;
  for (ModelReplica::ChunkState chunk : replica_->chunk_states()) {
    state_bytes +=
        3.0 * sizeof(float) * static_cast<double>(chunk.model.parameters().padded_count());
  }
  const double estimate = std::max(restore_s, state_bytes / kAssumedSaveBytesPerS);
  stop_monitor_.emplace(end.unix_time, config_.run.stop_margin_s, estimate);
  if (end.unix_time) {
    progress_->message(fmt::format(
        "time limit: the job ends in {:.0f} s (from {}); the run saves and exits with status {} "
        "when another step, a checkpoint and {:.0f} s of margin no longer fit",
        *end.unix_time - unix_time_now(), end.source, kStoppedEarlyExit,
        config_.run.stop_margin_s));
  }
}

void TrainingRun::record_manifest() {
  RunStart start;
  start.hosts = gather_hostnames(parallel_.world_handle());  // collective
  if (!reporter_) {
    run_agreed(parallel_.world(), [] {});  // rank 0 writes manifest.json
    return;
  }
  start.build = describe_build();
  start.config = config_;
  start.world_size = parallel_.world().size();
  start.dp = parallel_.shape().dp;
  start.tp = parallel_.shape().tp;
  start.pp = parallel_.shape().pp;
  start.data = describe_data(config_, *data_);
  start.resumed_from_step = first_step_ - 1;
  start.changed_settings = changed_settings_;
  start.unix_time = unix_time_now();
  std::string problem;
  const std::optional<nlohmann::json> previous = load_manifest(config_.run.dir, problem);
  if (!problem.empty()) progress_->message("warning: " + problem + "; starting a new manifest");
  const nlohmann::json manifest =
      record_start(previous, start, describe_slurm_job(environment_variable));
  checkpoints_->set_manifest(manifest.dump());
  run_agreed(parallel_.world(), [&] {
    if (reporter_) write_manifest(config_.run.dir, manifest);
  });
}

void TrainingRun::open_data_and_run_dir() {
  // Every rank opens the data; rank 0 also writes the run directory. A rank that fails alone
  // must still stop the others before any collective work starts.
  run_agreed(parallel_.world(), [&] {
    data_.emplace(DataLoader::open(config_.data, config_.model));
    if (config_.eval.every > 0 && data_->samples_per_epoch(Split::validation) == 0) {
      throw UsageError("data.source '" + config_.data.source +
                       "' has no validation windows of seq_len + 1 tokens; re-run tessera "
                       "prepare with a larger --val-fraction, or set eval.every = 0");
    }
    if (reporter_) {
      check_deadline(config_.run.deadline);
      check_writable(config_.run.dir, "run.dir", 0,
                     "pick a writable directory with --set run.dir=PATH");
      run_dir_lock_.emplace(config_.run.dir);
      write_resolved_config(config_);
      metrics_.emplace(config_.run.dir);
    }
    // Every rank writes its part of each checkpoint file (parallel HDF5).
    check_writable(checkpoint_directory(config_), "checkpoint.dir", parallel_.world_rank(),
                   "point checkpoint.dir (default run.dir/checkpoints) at a directory every rank "
                   "can write, with free space");
  });
  result_.loss_floor = data_->loss_floor();
  result_.unigram_entropy = data_->unigram_entropy();
  data_check_ = verify_token_shards(*data_, config_.data, parallel_.world());
}

void TrainingRun::announce() {
  const double flops_per_token = model_flops_per_token(config_.model);
  out_ << "# tessera " << TESSERA_VERSION << ": resolved configuration\n"
       << to_toml(config_) << "# data: " << data_->describe() << "\n";
  if (!data_check_.empty()) progress_->message(data_check_);
  if (metrics_) {
    const double floor = result_.loss_floor;
    const std::optional<double> end = stop_monitor_->end_time();  // UNIX seconds, or none
    metrics_->write(
        {{"kind", "run"},
         {"layout", parallel_.shape().str()},
         {"flops_per_token", flops_per_token},
         {"loss_floor", std::isnan(floor) ? nlohmann::json(nullptr) : nlohmann::json(floor)},
         {"unigram_entropy", result_.unigram_entropy},
         {"job_end_time", end ? nlohmann::json(*end) : nlohmann::json(nullptr)}});
  }
  progress_->message(
      fmt::format("layout {} ({} ranks); {} microbatches of {} per replica per step; "
                  "{:.3g} FLOP/token; data loss floor {:.4f}",
                  parallel_.shape().str(), parallel_.world().size(), layout_.micro_batches,
                  config_.train.micro_batch, flops_per_token, result_.loss_floor));
}

double TrainingRun::train_step(int step, UpdateResult& update, PipelineTimings& pipeline) {
  const TrainConfig& train = config_.train;
  // This replica's share of the step: global microbatches dp_rank * m .. dp_rank * m + m - 1.
  const int64_t first_sample =
      static_cast<int64_t>(step - 1) * train.global_batch +
      static_cast<int64_t>(dp_rank_) * layout_.micro_batches * train.micro_batch;
  watchdog_.mark(step, "reading the step's tokens");
  tokens_.read(*data_, Split::train, first_sample, layout_.micro_batches, train.micro_batch);
  replica_->zero_gradients();
  const auto grad_scale = static_cast<float>(1.0 / tokens_per_step_);
  watchdog_.mark(step, "forward and backward (pipeline and tensor-parallel exchanges)");
  const std::vector<double> losses = executor_->run_step(
      schedule_, layout_.micro_batches, train.micro_batch, grad_scale,
      [&](int m) { return tokens_.microbatch(m); }, replica_->step_hooks());
  watchdog_.mark(step, "the loss all-reduce");
  const double loss = global_loss_sum(losses, parallel_, loss_holder_) / tokens_per_step_;
  watchdog_.mark(step, "waiting for the last checkpoint's snapshot");
  checkpoints_->before_update();
  watchdog_.mark(step, "the gradient reduction and optimizer step");
  update = replica_->reduce_and_update(step, learning_rate(train, step), std::isfinite(loss));
  pipeline = executor_->take_timings();
  return loss;
}

bool TrainingRun::bad_step_ends_run(int step, double loss, const UpdateResult& update) {
  const int limit = config_.train.max_bad_steps;
  ++bad_steps_in_a_row_;
  if (metrics_) {
    metrics_->write({{"kind", "skipped_step"},
                     {"step", step},
                     {"loss", loss},
                     {"grad_norm", update.grad_norm},
                     {"in_a_row", bad_steps_in_a_row_}});
  }
  progress_->message(
      fmt::format("step {} | loss {:.4f} and gradient norm {:.4g}: not finite; the weights are "
                  "left as they were "
                  "({} of train.max_bad_steps = {} in a row)",
                  step, loss, update.grad_norm, bad_steps_in_a_row_, limit));
  if (bad_steps_in_a_row_ < limit) return false;
  report_saves(in_phase(step, "checkpoint", [&] { return checkpoints_->wait(); }));
  result_.diverged_at_step = step;
  const std::string explanation = fmt::format(
      "{} steps in a row had a non-finite loss or gradient norm (train.max_bad_steps)", limit);
  if (metrics_) {
    metrics_->write({{"kind", "stop"},
                     {"step", step},
                     {"reason", "diverged"},
                     {"detail", explanation},
                     {"exit_status", kDivergedExit}});
  }
  progress_->message(fmt::format(
      "step {} | {}: the run stops with exit status {}; the checkpoints written before are kept. "
      "Lower train.lr or set train.grad_clip, then resume",
      step, explanation, kDivergedExit));
  return true;
}

void TrainingRun::log_step(const StepReport& report, const UpdateResult& update,
                           const PipelineTimings& pipeline) {
  const StageTimes stage_times = gather_stage_times(pipeline, parallel_);  // collective
  if (metrics_) {
    nlohmann::json record = to_json(report);
    record["time_compute_s"] = pipeline.compute_s;
    record["time_tp_comm_s"] = pipeline.tp_comm_s;
    record["time_pipeline_wait_s"] = pipeline.wait_s;
    record["time_dp_wait_s"] = update.timings.dp_wait_s;
    record["time_optimizer_s"] = update.timings.optimizer_s;
    // This rank's high-water mark so far, so that a run stopped early (a benchmark's) shows it.
    record["peak_buffer_bytes"] = backend_->memory_use().peak_buffer_bytes;
    if (stages_ > 1) {
      record["stage_busy_s"] = stage_times.busy_s;
      record["stage_wait_s"] = stage_times.wait_s;
      record["bubble_measured"] = stage_times.bubble();
      record["bubble_theoretical"] =
          theoretical_bubble_fraction(stages_, layout_.micro_batches, layout_.chunks_per_stage);
    }
    metrics_->write(record);
  }
  progress_->update(report);
}

double TrainingRun::evaluate() {
  // The validation microbatches are shared out over the replicas, each computed by one of them;
  // their losses are summed in microbatch order, so the figure is the same whatever dp is.
  const int batches = config_.eval.batches, batch = config_.train.micro_batch;
  const ReplicaShare share = replica_share(batches, parallel_.shape().dp, dp_rank_);
  const auto mine = static_cast<int>(share.size());
  eval_tokens_.read(*data_, Split::validation, share.begin * batch, mine, batch);
  const std::vector<double> losses =
      executor_->run_forward(mine, batch, [&](int m) { return eval_tokens_.microbatch(m); });
  executor_->take_timings();  // evaluation is not part of any step's time split
  double sum = 0.0;
  for (const double loss :
       gather_item_values(losses, static_cast<std::size_t>(share.begin),
                          static_cast<std::size_t>(batches), parallel_, loss_holder_)) {
    sum += loss;
  }
  return sum / (static_cast<double>(batches) * batch * config_.model.seq_len);
}

void TrainingRun::report_changed_settings() {
  const std::string& saved = checkpoints_->restored_config();
  if (saved.empty()) return;
  std::vector<SettingChange> changes;
  try {
    changes = changed_settings(parse_config(saved, {}), config_);
  } catch (const UsageError& error) {
    progress_->message(std::string("warning: the checkpoint's settings cannot be compared with ") +
                       "this run's (" + error.what() + ")");
    return;
  }
  // run.deadline is each job's own end time, not a change to the run.
  std::erase_if(changes, [](const SettingChange& change) { return change.key == "run.deadline"; });
  // With parallel.dp = auto the settings stay the same on another number of nodes; the grid
  // is what changed.
  if (const std::optional<GridShape>& saved_shape = checkpoints_->restored_shape();
      saved_shape && *saved_shape != parallel_.shape()) {
    changes.push_back({"layout", saved_shape->str(), parallel_.shape().str()});
  }
  if (changes.empty()) return;
  std::string list;
  for (const SettingChange& change : changes) {
    list += (list.empty() ? "" : ", ") + change.key + " " + change.before + " -> " + change.after;
    changed_settings_.push_back(
        {{"key", change.key}, {"checkpoint", change.before}, {"now", change.after}});
  }
  progress_->message(
      fmt::format("note: {} setting(s) differ from the checkpoint's: {}", changes.size(), list));
}

nlohmann::json TrainingRun::planned_parts() const {
  nlohmann::json parts = nlohmann::json::object();
  for (const MemoryPart& part : memory_plan_.peak().parts()) parts[part.name] = part.bytes;
  return parts;
}

void TrainingRun::report_memory(int step) {
  const MemoryUse use = backend_->memory_use();
  Communicator& world = parallel_.world();
  const double peak = world.all_reduce_max_double(static_cast<double>(use.peak_buffer_bytes));
  const double system = world.all_reduce_max_double(static_cast<double>(use.system_bytes));
  const bool gpu = backend_->describe_device().kind == "gpu";
  if (metrics_) {
    metrics_->write({{"kind", "memory"},
                     {"step", step},
                     {"backend", std::string(backend_->name())},
                     {"peak_buffer_bytes", peak},
                     {"planned_peak_bytes", memory_plan_.peak().total()},
                     {"planned_parts", planned_parts()},
                     {"system_bytes", system}});
  }
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  progress_->message(fmt::format(
      "memory: at most {:.3f} GiB in the {} backend's buffers on a rank (planned {:.3f}); "
      "{:.3f} GiB {}",
      peak / kGiB, backend_->name(), static_cast<double>(memory_plan_.peak().total()) / kGiB,
      system / kGiB,
      gpu ? "in use on the GPU at the end (every process's, the CUDA context's included)"
          : "peak resident set of a rank's process"));
}

void TrainingRun::report_saves(const std::vector<SaveReport>& saves) {
  for (const SaveReport& save : saves) {
    if (save.not_finite) {
      if (metrics_) {
        metrics_->write({{"kind", "checkpoint"}, {"step", save.step}, {"skipped", "not finite"}});
      }
      progress_->message(fmt::format(
          "step {} | no checkpoint: the step's loss or gradient norm, or the weights or "
          "optimizer state, are not finite; the checkpoints written before are kept",
          save.step));
      continue;
    }
    stop_monitor_->save_took(save.write_s);
    const double bytes = static_cast<double>(save.bytes);
    if (metrics_) {
      metrics_->write({{"kind", "checkpoint"},
                       {"step", save.step},
                       {"seconds", save.write_s},
                       {"blocked_s", save.blocked_s},
                       {"bytes", bytes}});
    }
    progress_->message(fmt::format(
        "step {} | checkpoint saved: {:.1f} MB written in {:.2f} s, training blocked {:.2f} s",
        save.step, bytes / 1e6, save.write_s, save.blocked_s));
  }
}

bool TrainingRun::end_step(int step, int last_step, double step_s) {
  // The step boundary's one collective: the checkpoint interval, stop signals and the time
  // limit, agreed over all ranks.
  stop_monitor_->step_took(step_s);
  const BoundaryReadings agreed =
      agree_at_boundary(parallel_.world_handle(),
                        stop_monitor_->readings(signals_.received(), since_checkpoint_.seconds()));
  const StopDecision stop = step < last_step ? stop_monitor_->decide(agreed) : StopDecision{};
  if (stop.reason != StopReason::none || checkpoint_due(step, last_step, agreed)) {
    const bool step_finite = bad_steps_in_a_row_ == 0;
    report_saves(
        in_phase(step, "checkpoint", [&] { return checkpoints_->save(step, step_finite); }));
    since_checkpoint_.restart();
  }
  if (stop.reason == StopReason::none) return false;
  stop_early(step, stop);
  return true;
}

void TrainingRun::stall_on_purpose(int step) {
  watchdog_.mark(step, "debug.stall_at_step (stalled on purpose)");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

bool TrainingRun::checkpoint_due(int step, int last_step, const BoundaryReadings& agreed) const {
  const CheckpointConfig& checkpoint = config_.checkpoint;
  // train.stop_after's step always saves: the run continues from it.
  const bool end = step == last_step && (checkpoint.at_end || step < config_.train.steps);
  bool due = end || (checkpoint.every > 0 && step % checkpoint.every == 0);
  if (checkpoint.every_minutes > 0)
    due = due || agreed.since_checkpoint_s / 60 >= checkpoint.every_minutes;
  return due;
}

void TrainingRun::stop_early(int step, const StopDecision& stop) {
  report_saves(in_phase(step, "checkpoint", [&] { return checkpoints_->wait(); }));
  result_.stopped_early = stop.reason;
  if (metrics_) {
    nlohmann::json record = {{"kind", "stop"},
                             {"step", step},
                             {"reason", stop_reason_name(stop.reason)},
                             {"detail", stop.explanation},
                             {"exit_status", kStoppedEarlyExit}};
    if (stop.reason == StopReason::signal) record["signal"] = signal_name(stop.signal);
    metrics_->write(record);
  }
  progress_->message(fmt::format(
      "step {} | {}; {}; exit status {} so the job is requeued", step, stop.explanation,
      bad_steps_in_a_row_ > 0 ? "no checkpoint of this step (above)" : "checkpoint saved",
      kStoppedEarlyExit));
}

TrainResult TrainingRun::run() {
  announce();
  const TrainConfig& train = config_.train;
  const double flops_per_token = model_flops_per_token(config_.model);
  const double peak = config_.log.peak_tflops * 1e12 * parallel_.world().size();
  StepTimer run_timer;
  double timed_seconds = 0.0;
  const int last_step =
      train.stop_after > 0 ? std::min(train.stop_after, train.steps) : train.steps;
  int done_step = first_step_ - 1;
  for (int step = first_step_; step <= last_step; ++step) {
    if (step == config_.debug.stall_at_step && parallel_.world_rank() == config_.debug.stall_rank) {
      stall_on_purpose(step);
    }
    StepTimer step_timer;
    UpdateResult update;
    PipelineTimings pipeline;
    const double loss =
        in_phase(step, "training", [&] { return train_step(step, update, pipeline); });
    result_.losses.push_back(loss);
    if (!update.skipped) {
      bad_steps_in_a_row_ = 0;
    } else if (bad_step_ends_run(step, loss, update)) {
      done_step = step;
      break;
    }
    const double seconds = step_timer.seconds();
    if (step > first_step_) timed_seconds += seconds;  // the first step allocates: leave it out
    const double tokens_per_s = tokens_per_step_ / seconds;
    if (step % config_.log.every == 0 || step == train.steps) {
      watchdog_.mark(step, "logging (gathering the stages' times)");
      log_step({step, train.steps, loss, learning_rate(train, step), update.grad_norm, tokens_per_s,
                flops_per_token * tokens_per_s / peak, run_timer.seconds()},
               update, pipeline);
    }
    if (config_.eval.every > 0 && (step % config_.eval.every == 0 || step == train.steps)) {
      const double val_loss = in_phase(step, "evaluation", [&] { return evaluate(); });
      result_.val_losses.push_back(val_loss);
      if (metrics_) metrics_->write({{"kind", "eval"}, {"step", step}, {"val_loss", val_loss}});
      progress_->message(fmt::format("step {} | val_loss {:.4f}", step, val_loss));
    }
    done_step = step;
    watchdog_.mark(step, "the step's end (agreeing on stop signals and checkpoints)");
    if (end_step(step, last_step, step_timer.seconds())) break;
  }
  report_saves(in_phase(done_step, "checkpoint", [&] { return checkpoints_->wait(); }));
  watchdog_.mark(done_step, "the final report (memory, parameter checksum)");
  report_memory(done_step);
  const int timed_steps = done_step - first_step_;
  result_.tokens_per_s = timed_steps > 0 ? tokens_per_step_ * timed_steps / timed_seconds : 0;
  if (metrics_ && result_.stopped_early == StopReason::none && result_.diverged_at_step == 0) {
    // The parameters rank 0 holds (all of them without tensor or pipeline parallelism), for
    // comparing runs bit for bit.
    metrics_->write({{"kind", "final"},
                     {"step", last_step},
                     {"parameter_checksum", replica_->parameter_checksum()}});
  }
  if (reporter_) write_result(done_step - first_step_ + 1);
  progress_->finish();
  watchdog_.finish();
  return result_;
}

void TrainingRun::write_result(int steps_run) {
  // A summary for sweeps and calibration: a run that trained never fails over it.
  try {
    write_json_file(config_.run.dir / "result.json", to_json(read_measured_run(config_.run.dir)));
  } catch (const UsageError& error) {
    // Under 2 logged steps there is no timing to summarise, and nothing to say.
    if (steps_run >= 2 * config_.log.every) {
      progress_->message(std::string("warning: no result.json: ") + error.what());
    }
  }
}

}  // namespace

int exit_status(const TrainResult& result) {
  if (result.diverged_at_step > 0) return kDivergedExit;
  return result.stopped_early != StopReason::none ? kStoppedEarlyExit : 0;
}

TrainResult train(const Config& config, const TrainingLayout& layout, std::ostream& console,
                  ParallelContext& parallel) {
  return TrainingRun(config, layout, console, parallel).run();
}

}  // namespace tessera
