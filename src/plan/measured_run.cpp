#include "plan/measured_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

#include "core/error.hpp"
#include "io/manifest/manifest.hpp"
#include "parallel/layout/training_layout.hpp"

namespace tessera {
namespace {

/// The "train" records of metrics.jsonl since the last start (its last "run" record): a resumed
/// run may have started at another layout.
std::vector<nlohmann::json> step_records(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw UsageError("cannot read " + file.string() + "; pass a tessera run directory");
  std::vector<nlohmann::json> steps;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) continue;
    if (record.value("kind", "") == "run") steps.clear();
    if (record.value("kind", "") == "train" && record.contains("time_compute_s")) {
      steps.push_back(record);
    }
  }
  return steps;
}

/// The last "memory" record of metrics.jsonl, or null.
nlohmann::json last_memory_record(const std::filesystem::path& file) {
  std::ifstream in(file);
  nlohmann::json found;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.value("kind", "") == "memory") found = record;
  }
  return found;
}

}  // namespace

double median(std::vector<double> values) {
  TESSERA_CHECK(!values.empty(), "median of nothing");
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

MeasuredRun read_measured_run(const std::filesystem::path& run_dir) {
  MeasuredRun run;
  run.dir = run_dir;
  // The latest start's configuration and job size (a resumed run may have changed either).
  const nlohmann::json start = latest_start(read_manifest(run_dir / "manifest.json"));
  run.config = parse_config(start.at("config").at("toml").get<std::string>(), {});
  run.ranks = start.at("layout").value("ranks", 1);
  const std::vector<nlohmann::json> steps = step_records(run_dir / "metrics.jsonl");
  if (steps.size() < 2) {
    throw UsageError(fmt::format(
        "{} has {} timed step(s); calibration needs at least 2 (the first, which allocates, is "
        "left out): train more steps with log.every = 1",
        (run_dir / "metrics.jsonl").string(), steps.size()));
  }
  const double tokens =
      static_cast<double>(run.config.train.global_batch) * run.config.model.seq_len;
  // The median over the steps after the first of one field of the step records.
  auto median_of = [&](const char* key) {
    std::vector<double> values;
    for (std::size_t i = 1; i < steps.size(); ++i) values.push_back(steps[i].at(key).get<double>());
    return median(values);
  };
  run.steps = static_cast<int>(steps.size()) - 1;
  run.tokens_per_s = median_of("tokens_per_s");
  run.step_s = tokens / run.tokens_per_s;
  run.mfu = median_of("mfu");
  run.compute_s = median_of("time_compute_s");
  run.tp_comm_s = median_of("time_tp_comm_s");
  run.pipeline_wait_s = median_of("time_pipeline_wait_s");
  run.dp_wait_s = median_of("time_dp_wait_s");
  run.optimizer_s = median_of("time_optimizer_s");
  const nlohmann::json memory = last_memory_record(run_dir / "metrics.jsonl");
  if (!memory.is_null()) {
    run.peak_buffer_bytes = memory.value("peak_buffer_bytes", 0.0);
    run.planned_peak_bytes = memory.value("planned_peak_bytes", 0.0);
  }
  return run;
}

nlohmann::json to_json(const MeasuredRun& run) {
  const TrainingLayout layout = resolve_layout(run.config, run.ranks);
  return {{"run_dir", run.dir.string()},
          {"ranks", run.ranks},
          {"dp", layout.shape.dp},
          {"tp", layout.shape.tp},
          {"pp", layout.shape.pp},
          {"micro_batch", layout.micro_batch},
          {"global_batch", run.config.train.global_batch},
          {"steps", run.steps},
          {"tokens_per_s", run.tokens_per_s},
          {"mfu", run.mfu},
          {"step_s",
           {{"total", run.step_s},
            {"compute", run.compute_s},
            {"tp_comm", run.tp_comm_s},
            {"pipeline_wait", run.pipeline_wait_s},
            {"dp_wait", run.dp_wait_s},
            {"optimizer", run.optimizer_s}}},
          {"peak_buffer_bytes", run.peak_buffer_bytes},
          {"planned_peak_bytes", run.planned_peak_bytes},
          {"manifest", (run.dir / "manifest.json").string()}};
}

}  // namespace tessera
