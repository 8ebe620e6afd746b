#include "plan/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/json_numbers.hpp"
#include "plan/step_time.hpp"

namespace tessera {
namespace {

/// The profile as it stood, for computing the amounts (FLOPs, bytes) a run moved.
struct Fitted {
  std::vector<double> tflops, intra_gb_s, memory_gb_s;
};

void fit_run(const MeasuredRun& run, const HardwareProfile& base, Fitted& fitted) {
  const TrainingLayout layout = resolve_layout(run.config, run.ranks);
  const StepTime planned = plan_step_time(run.config, layout, base);
  if (layout.shape.pp == 1 && run.compute_s > planned.overhead_s) {
    fitted.tflops.push_back(planned.compute_flops / (run.compute_s - planned.overhead_s) / 1e12);
  }
  const double tp_latency_s = planned.tp_messages * base.latency_us * 1e-6;
  if (layout.shape.tp > 1 && run.tp_comm_s > tp_latency_s) {
    fitted.intra_gb_s.push_back(planned.tp_link_bytes / (run.tp_comm_s - tp_latency_s) / 1e9);
  }
  if (run.optimizer_s > 0.0)
    fitted.memory_gb_s.push_back(planned.optimizer_bytes / run.optimizer_s / 1e9);
}

/// Records in `profile`'s sources where `key`'s new value came from, replacing what they said
/// of it before.
void cite(HardwareProfile& profile, const std::string& key, const std::string& origin) {
  std::erase_if(profile.sources, [&](const std::string& s) { return s.starts_with(key + ":"); });
  profile.sources.push_back(key + ": " + origin);
}

}  // namespace

HardwareProfile calibrate_profile(const HardwareProfile& base,
                                  const std::vector<MeasuredRun>& runs) {
  Fitted fitted;
  std::vector<Precision> precisions;
  for (const MeasuredRun& run : runs) {
    fit_run(run, base, fitted);
    precisions.push_back(run.config.train.precision);
  }
  if (fitted.tflops.empty()) {
    throw UsageError(
        "no run to calibrate the compute rate from: pass at least one run without pipeline "
        "parallelism (parallel.pp = 1)");
  }
  if (std::adjacent_find(precisions.begin(), precisions.end(), std::not_equal_to<>()) !=
      precisions.end()) {
    throw UsageError("the runs mix fp32 and bf16; calibrate each precision from its own runs");
  }
  HardwareProfile profile = base;
  const bool bf16 = precisions.front() == Precision::bf16;
  (bf16 ? profile.achievable_tflops.bf16 : profile.achievable_tflops.fp32) = median(fitted.tflops);
  cite(profile, fmt::format("achievable_tflops.{}", bf16 ? "bf16" : "fp32"),
       fmt::format("calibrated, median of {} run(s) without pipeline parallelism",
                   fitted.tflops.size()));
  if (!fitted.intra_gb_s.empty()) {
    profile.intra_node_gb_s = median(fitted.intra_gb_s);
    cite(profile, "intra_node_gb_s",
         fmt::format("calibrated, median of {} run(s) with tp > 1", fitted.intra_gb_s.size()));
  }
  if (!fitted.memory_gb_s.empty()) {
    profile.memory_bandwidth_gb_s = median(fitted.memory_gb_s);
    cite(profile, "memory_bandwidth_gb_s",
         fmt::format("calibrated from the optimizer's time, median of {} run(s)",
                     fitted.memory_gb_s.size()));
  }
  return profile;
}

namespace {

/// apply_kernel_rates without the translation of JSON type errors.
HardwareProfile kernel_rates_of(const HardwareProfile& base, const nlohmann::json& measured,
                                const std::string& origin) {
  if (!measured.is_object() || measured.value("format", "") != "tessera-hardware-profile" ||
      !measured.contains("gemm") || !measured["gemm"].is_array()) {
    throw UsageError(origin +
                     " is not the JSON of tessera calibrate (format \"tessera-hardware-profile\"); "
                     "pass a run directory, a sweep directory or such a file");
  }
  const auto version = measured.find("version");
  if (version == measured.end() || !whole_number_in(*version, 1, 1)) {
    throw UsageError(fmt::format(
        "{} is format version {}, not the version this tessera reads (1); use the tessera "
        "that wrote it",
        origin, version == measured.end() ? "(none)" : version->dump()));
  }
  HardwareProfile profile = base;
  const nlohmann::json device = measured.value("device", nlohmann::json::object());
  for (const char* precision : {"fp32", "bf16"}) {
    double flops = 0.0, seconds = 0.0;
    int classes = 0;
    for (const nlohmann::json& gemm : measured["gemm"]) {
      if (gemm.value("precision", "") != precision) continue;
      const double forward = 2.0 * gemm.value("rows", 0.0) * gemm.value("in_features", 0.0) *
                             gemm.value("out_features", 0.0);
      const double forward_rate = gemm.value("forward_tflops", 0.0) * 1e12;
      const double backward_rate = gemm.value("backward_tflops", 0.0) * 1e12;
      if (forward <= 0.0 || forward_rate <= 0.0 || backward_rate <= 0.0) {
        throw UsageError(fmt::format("{}: GEMM class '{}' has no positive shape and rates", origin,
                                     gemm.value("class", "?")));
      }
      flops += 3.0 * forward;  // the backward computes the input and the weight gradients
      seconds += forward / forward_rate + 2.0 * forward / backward_rate;
      ++classes;
    }
    if (classes == 0) continue;
    const double tflops = flops / seconds / 1e12;
    (std::string_view(precision) == "bf16" ? profile.achievable_tflops.bf16
                                           : profile.achievable_tflops.fp32) = tflops;
    cite(profile, fmt::format("achievable_tflops.{}", precision),
         fmt::format("calibrated by tessera calibrate ({}, {} on {}): total FLOPs over total time "
                     "of {} GEMM class(es), forward and backward",
                     origin, device.value("name", "an unnamed device"),
                     measured.value("host", "an unnamed host"), classes));
  }
  return profile;
}

}  // namespace

HardwareProfile apply_kernel_rates(const HardwareProfile& base, const nlohmann::json& measured,
                                   const std::string& origin) {
  try {
    return kernel_rates_of(base, measured, origin);
  } catch (const nlohmann::json::exception& error) {
    throw UsageError(origin + " is malformed (" + error.what() +
                     "); pass the JSON tessera calibrate wrote, unchanged");
  }
}

}  // namespace tessera
