// Calibration: a hardware profile's achievable rates fitted to runs measured on the machine
// (`tessera plan --calibrate RUN_DIR...`), so that plans for a proposal rest on what tessera
// achieved there, not on a datasheet.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plan/hardware_profile.hpp"
#include "plan/measured_run.hpp"

namespace tessera {

/// `base` with its rates fitted to `runs`, each the median over the runs that show it:
/// achievable_tflops of the runs' precision from the runs without pipeline parallelism (rank
/// 0's compute is then the slowest stage's), intra_node_gb_s from the runs with tp > 1,
/// memory_bandwidth_gb_s from the optimizer's time. Every fitted figure and how many runs it
/// came from is added to `sources`. UsageError when no run shows compute.
HardwareProfile calibrate_profile(const HardwareProfile& base,
                                  const std::vector<MeasuredRun>& runs);

/// `base` with achievable_tflops of each precision that `measured` (the JSON `tessera calibrate`
/// writes, doc/hardware-profiles.md) has GEMMs of: the rate of a block's worth of them, total
/// FLOPs over total time of every GEMM class forward and backward. `origin` (the file) is cited
/// in `sources`. UsageError when `measured` is not such a profile, or a newer version of it.
HardwareProfile apply_kernel_rates(const HardwareProfile& base, const nlohmann::json& measured,
                                   const std::string& origin);

}  // namespace tessera
