// Calibration: what one device achieves through tessera's own kernels (its linear layers'
// GEMMs per shape class, fused attention forward and backward, host <-> device copies), written
// as a hardware profile (doc/hardware-profiles.md) that memory and time plans are built from.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace tessera {

/// One attention problem: batch sequences of seq tokens, n_heads heads of head_dim.
struct AttentionClass {
  int seq = 0, n_heads = 0, head_dim = 0;
};

struct CalibrationOptions {
  /// Model widths whose linear layers are measured: for each, the shapes of one transformer block
  /// (qkv d->3d, output d->d, MLP d->4d and 4d->d) and the vocabulary head d->vocab.
  std::vector<int> d_models{768, 2048, 4096};
  int tokens = 8192;  ///< rows of every GEMM and tokens of every attention problem
  int vocab = 50304;
  std::vector<AttentionClass> attention{{1024, 12, 64}, {2048, 16, 128}, {4096, 32, 128}};
  std::size_t copy_bytes = std::size_t{1} << 30;
  /// Each figure is timed over repetitions lasting at least this long, after one warm-up call.
  double min_seconds = 0.2;
};

/// Measures `backends` (one per precision, each labelled by its GemmPrecision name, e.g. "fp32",
/// "bf16"), all on one device; copies are measured once, on the first. `progress` receives one
/// line per figure. Returns the profile's JSON (format in doc/hardware-profiles.md).
nlohmann::json calibrate_device(const std::vector<std::pair<std::string, Backend*>>& backends,
                                const CalibrationOptions& options,
                                const std::function<void(const std::string&)>& progress);

/// The profile as a Markdown table, for a log or a proposal.
std::string describe_profile(const nlohmann::json& profile);

}  // namespace tessera
