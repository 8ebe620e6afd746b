// metrics.jsonl: one JSON object per line in the run directory, the record of a training run
// that plots and comparisons read (scripts/plot_metrics.py).
//
// Records carry a "kind": "run" once per start of the trainer (the config, and "loss_floor" when
// the data has a known entropy), "train" per logged step (StepReport's fields), "eval" per
// evaluation ("step", "val_loss"). A resumed run appends to the same file, so a step can appear
// twice; readers keep the last.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>

namespace tessera {

/// What the trainer knows after a logged optimizer step.
struct StepReport {
  int64_t step = 0;  ///< optimizer steps completed, 1-based
  int64_t total_steps = 0;
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_s = 0;
  double mfu = 0;        ///< model FLOP utilisation as a fraction (0.123 is 12.3%)
  double elapsed_s = 0;  ///< wall time since this process started training
};

/// The "train" record of a step: {"kind": "train", "step": ..., "loss": ..., ...}.
nlohmann::json to_json(const StepReport& report);

/// Appends records to `<run_dir>/metrics.jsonl`. Each record goes out in one write(2) of a whole
/// line, so a killed run leaves only whole lines (no fsync: a node crash may lose the last few).
class MetricsWriter {
 public:
  /// Creates run_dir if needed and opens the file for appending; throws UsageError if it cannot.
  explicit MetricsWriter(const std::filesystem::path& run_dir);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  /// Writes `record` (a JSON object) as one line.
  void write(const nlohmann::json& record);

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace tessera
