// A measured run: what a `tessera train` run directory says about its speed and memory. The
// directory holds every start's configuration and layout (manifest.json) and every step's time
// split and the memory peak (metrics.jsonl); the latest start is what counts; calibration fits
// rates to it, a scaling report tabulates it, and a run writes it as result.json when it ends.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "io/config/config.hpp"

namespace tessera {

/// A measured run: its configuration, job size, and the medians over its steps after the first
/// (which allocates) of the step time and its parts as rank 0 measured them.
struct MeasuredRun {
  std::filesystem::path dir;
  Config config;
  int ranks = 1;
  int steps = 0;  ///< steps the medians are over
  double step_s = 0.0, compute_s = 0.0, tp_comm_s = 0.0, optimizer_s = 0.0;
  double pipeline_wait_s = 0.0, dp_wait_s = 0.0;
  double tokens_per_s = 0.0;        ///< global_batch x seq_len / step_s
  double mfu = 0.0;                 ///< the median of the steps' (against log.peak_tflops)
  double peak_buffer_bytes = 0.0;   ///< the memory record's, largest rank; 0 if none yet
  double planned_peak_bytes = 0.0;  ///< the memory plan's, from the same record
};

/// Reads `run_dir`. UsageError naming the file when one is missing or has fewer than 2 steps.
MeasuredRun read_measured_run(const std::filesystem::path& run_dir);

/// The median of `values` (the mean of the middle two for an even count); not of none.
double median(std::vector<double> values);

/// The run as result.json holds it: the layout (dp, tp, pp, ranks), the medians, the memory.
nlohmann::json to_json(const MeasuredRun& run);

}  // namespace tessera
