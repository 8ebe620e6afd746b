// A hardware profile: what one node of a machine has and achieves, for planning layouts and
// allocations (`tessera plan`). TOML files in modules/hardware/ (installed to
// share/tessera/hardware), each citing its sources; modules/hardware/README.md documents every
// key. A site copies one and edits it, or fits it to its own runs with `tessera plan
// --calibrate`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/config/config.hpp"

namespace tessera {

/// A rate in each precision tessera computes in.
struct PrecisionRates {
  double fp32 = 0.0;
  double bf16 = 0.0;
  double of(Precision precision) const { return precision == Precision::bf16 ? bf16 : fp32; }
};

struct HardwareProfile {
  std::string name;  ///< file stem
  std::filesystem::path file;
  std::string description;
  std::vector<std::string> sources;  ///< where each figure comes from
  /// Which backend runs on it (its memory traits: attention state, scratch).
  BackendKind backend = BackendKind::cuda;
  int devices_per_node = 1;          ///< ranks per node: GPUs (GCDs), or cores of a CPU node
  double device_memory_bytes = 0.0;  ///< each device's (a CPU node's memory / devices)
  double reserved_bytes = 0.0;       ///< per device, not for tessera's buffers (runtime, MPI)
  int threads_per_device = 1;        ///< host threads per rank (CPU attention scratch)
  PrecisionRates peak_tflops;        ///< datasheet dense peak per device, for MFU
  /// What a training step achieves per device in model FLOPs (the model's GEMMs, attention and
  /// everything between them, counted as model_flops_per_token), TFLOP/s.
  PrecisionRates achievable_tflops;
  double memory_bandwidth_gb_s = 0.0;  ///< per device: the optimizer's streaming rate
  /// Per block and microbatch, time the FLOP rate does not cover (kernel launches, small
  /// element-wise kernels): what makes small microbatches slower on a GPU. Microseconds.
  double block_overhead_us = 0.0;
  double intra_node_gb_s = 0.0;  ///< per device and direction, to a device of its node
  double inter_node_gb_s = 0.0;  ///< per node and direction, shared by its devices
  double latency_us = 0.0;       ///< per message

  /// Memory a device's buffers may take.
  double usable_bytes() const { return device_memory_bytes - reserved_bytes; }
};

/// Directories searched for a profile by name: $TESSERA_HARDWARE_PATH (colon-separated), the
/// installed share/tessera/hardware, the source tree's modules/hardware.
std::vector<std::filesystem::path> hardware_search_path();

/// Reads a profile by name (looked up in `search_path`) or path. UsageError naming the file and
/// the key for an unknown key, a missing one or a value out of range.
HardwareProfile load_hardware_profile(const std::string& name_or_file,
                                      const std::vector<std::filesystem::path>& search_path);

/// Parses profile text; `name` and `file` are for messages.
HardwareProfile parse_hardware_profile(const std::string& toml_text, const std::string& name,
                                       const std::filesystem::path& file);

/// The profile as TOML that parse_hardware_profile reads back (for --calibrate's output).
std::string to_toml(const HardwareProfile& profile);

}  // namespace tessera
