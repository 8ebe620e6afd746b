// Calibration: a hardware profile's achievable rates fitted to runs measured on the machine
// (`tessera plan --calibrate RUN_DIR...`), so that plans for a proposal rest on what tessera
// achieved there, not on a datasheet. A run directory of `tessera train` (or a sweep point)
// holds its resolved configuration (config.toml), its layout (manifest.json) and the time
// split of every step (metrics.jsonl).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "plan/hardware_profile.hpp"

namespace tessera {

/// A measured run: its configuration, job size, and the medians over its steps after the first
/// (which allocates) of the step time and its parts as rank 0 measured them.
struct MeasuredRun {
  std::filesystem::path dir;
  Config config;
  int ranks = 1;
  int steps = 0;  ///< steps the medians are over
  double step_s = 0.0, compute_s = 0.0, tp_comm_s = 0.0, optimizer_s = 0.0;
};

/// Reads `run_dir`. UsageError naming the file when one is missing or has fewer than 2 steps.
MeasuredRun read_measured_run(const std::filesystem::path& run_dir);

/// `base` with its rates fitted to `runs`, each the median over the runs that show it:
/// achievable_tflops of the runs' precision from the runs without pipeline parallelism (rank
/// 0's compute is then the slowest stage's), intra_node_gb_s from the runs with tp > 1,
/// memory_bandwidth_gb_s from the optimizer's time. Every fitted figure and how many runs it
/// came from is added to `sources`. UsageError when no run shows compute.
HardwareProfile calibrate_profile(const HardwareProfile& base,
                                  const std::vector<MeasuredRun>& runs);

}  // namespace tessera
