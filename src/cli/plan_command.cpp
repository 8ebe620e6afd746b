// `tessera plan CONFIG --hardware PROFILE --nodes N [--tokens T] [--top K] [--format F]`, and
// `tessera plan --calibrate RUN_DIR... --hardware BASE -o FITTED.toml`.
#include "cli/plan_command.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "io/config/config.hpp"
#include "plan/allocation_plan.hpp"
#include "plan/calibration.hpp"
#include "plan/hardware_profile.hpp"
#include "plan/scaling_report.hpp"

namespace tessera {
namespace {

struct PlanOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string hardware;
  AllocationRequest request;
  int top = 10;
  std::string format = "table";
  std::vector<std::string> calibrate;  ///< run or sweep directories, tessera calibrate JSON files
  std::string output;                  ///< where a calibrated profile goes
};

/// The run directories `given` names: a sweep directory (it holds sweep.json) stands for its
/// points that finished (they left result.json).
std::vector<std::filesystem::path> run_directories(const std::vector<std::string>& given) {
  std::vector<std::filesystem::path> dirs;
  for (const std::string& text : given) {
    const std::filesystem::path dir = text;
    if (!std::filesystem::exists(dir / "sweep.json")) {
      dirs.push_back(dir);
      continue;
    }
    for (const SweepPoint& point : read_sweep_description(dir / "sweep.json").points) {
      if (std::filesystem::exists(dir / point.run_dir / "result.json")) {
        dirs.push_back(dir / point.run_dir);
      }
    }
  }
  return dirs;
}

/// --calibrate: fits the profile to kernel measurements (tessera calibrate's JSON files) and
/// then to runs (their whole steps, which override the kernels' compute rate where they show
/// it), and writes it to --output.
void calibrate(const PlanOptions& options, const HardwareProfile& base) {
  if (options.output.empty()) {
    throw UsageError("--calibrate writes a profile: name it with -o FILE.toml");
  }
  HardwareProfile fitted = base;
  std::vector<std::string> directories;
  int kernel_files = 0;
  for (const std::string& given : options.calibrate) {
    if (!std::filesystem::is_regular_file(given)) {
      directories.push_back(given);
      continue;
    }
    const std::optional<nlohmann::json> measured = read_json_file(given);
    if (!measured) {
      throw UsageError("--calibrate " + given +
                       " does not parse as JSON; pass a run or sweep directory, or the JSON "
                       "tessera calibrate wrote");
    }
    fitted = apply_kernel_rates(fitted, *measured, given);
    ++kernel_files;
  }
  std::vector<MeasuredRun> runs;
  for (const std::filesystem::path& dir : run_directories(directories)) {
    runs.push_back(read_measured_run(dir));
  }
  if (!runs.empty()) fitted = calibrate_profile(fitted, runs);
  const std::string from =
      fmt::format("{} run(s) and {} tessera calibrate file(s)", runs.size(), kernel_files);
  std::ofstream out(options.output);
  out << "# Calibrated by tessera plan --calibrate from " << from << ", based on "
      << base.file.string() << "\n"
      << to_toml(fitted);
  if (!out) throw UsageError("cannot write " + options.output + "; pick a writable path with -o");
  std::cout << fmt::format(
      "tessera plan: {} from {}: achievable {:.4g} TFLOP/s fp32, {:.4g} bf16; intra-node "
      "{:.4g} GB/s; memory {:.4g} GB/s\n",
      options.output, from, fitted.achievable_tflops.fp32, fitted.achievable_tflops.bf16,
      fitted.intra_node_gb_s, fitted.memory_bandwidth_gb_s);
}

void run(const PlanOptions& options) {
  const HardwareProfile profile = load_hardware_profile(options.hardware, hardware_search_path());
  if (!options.calibrate.empty()) {
    calibrate(options, profile);
    return;
  }
  if (options.config.empty()) throw UsageError("tessera plan needs a CONFIG file to plan");
  const Config config = load_config(options.config, options.overrides);
  const AllocationPlan plan = plan_allocation(config, profile, options.request);
  std::cout << format_plan(plan, options.format, options.top);
}

}  // namespace

void add_plan_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "plan", "Rank every layout of a model on N nodes of a machine: memory, step time, cost");
  auto options = std::make_shared<PlanOptions>();
  cmd->add_option("config", options->config, "Configuration file (its model and batch)");
  cmd->add_option("--set", options->overrides, "Override one setting (repeatable)")
      ->type_name("SECTION.KEY=VALUE");
  cmd->add_option("--hardware", options->hardware,
                  "Hardware profile: a name from modules/hardware (e.g. h100-sxm-ndr400x8) or a "
                  ".toml file")
      ->required();
  cmd->add_option("--nodes", options->request.nodes, "Nodes of the job")->capture_default_str();
  cmd->add_option("--ranks-per-node", options->request.ranks_per_node,
                  "Ranks per node (default: the profile's devices per node)");
  cmd->add_option("--tokens", options->request.tokens,
                  "Tokens to train, for days and node-hours (default 20 per parameter)");
  cmd->add_flag("--as-configured", options->request.as_configured,
                "Plan only the configuration's own layout (parallel.*, train.micro_batch, "
                "train.recompute as given)");
  cmd->add_option("--calibrate", options->calibrate,
                  "Fit the profile's rates to these tessera run directories (config.toml, "
                  "manifest.json, metrics.jsonl), sweep directories (their finished points) or "
                  "tessera calibrate JSON files (kernel rates; runs override them), and write "
                  "it to -o")
      ->type_name("RUN_DIR|SWEEP_DIR|FILE.json ...");
  cmd->add_option("-o,--output", options->output, "Where --calibrate writes the fitted profile");
  cmd->add_option("--top", options->top, "Rows of each table")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--format", options->format, "table, md, csv (every row) or json (every row)")
      ->check(CLI::IsMember({"table", "md", "csv", "json"}))
      ->capture_default_str();
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
