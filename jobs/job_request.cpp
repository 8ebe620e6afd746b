#include "jobs/job_request.hpp"

#include <fmt/format.h>

#include <cctype>
#include <regex>

#include "core/error.hpp"
#include "jobs/slurm_script.hpp"
#include "parallel/layout/training_layout.hpp"

namespace tessera {
namespace {

/// The ParallelConfig keys a sweep entry may set (short names, without "parallel.").
bool is_parallel_key(const std::string& key) {
  for (const ConfigKeyInfo& info : describe_config_keys()) {
    if (info.name == "parallel." + key) return true;
  }
  return false;
}

/// A name Slurm takes on an #SBATCH line (job, account, QOS, partition): letters, digits and
/// _ . - + (and , between the partitions of a list). Anything else could end the line and
/// start a shell command, and a job name is also the script's file name: no '/', no "..".
void check_slurm_name(const std::string& value, const char* option, bool list = false) {
  const std::string allowed =
      std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-+") +
      (list ? "," : "");
  if (value.find_first_not_of(allowed) != std::string::npos || value.starts_with(".") ||
      value.starts_with("-")) {
    throw UsageError(fmt::format(
        "{} '{}' is not a Slurm name: use letters, digits and _ . - +{}, not starting with . or -",
        option, escape_control_characters(value), list ? " (, between partitions)" : ""));
  }
}

/// A path that goes onto an #SBATCH line, where a newline would end the directive (and the next
/// line run as a command).
void check_directive_path(const std::filesystem::path& path, const char* what) {
  const std::string text = path.string();
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      throw UsageError(fmt::format(
          "{} '{}' holds a control character, which an #SBATCH line cannot carry; choose a path "
          "without them",
          what, escape_control_characters(text)));
    }
  }
}

void check_positive(int value, const char* option) {
  if (value < 1) {
    throw UsageError(fmt::format("{} {} must be at least 1", option, value));
  }
}

void check_resources(JobRequest& request) {
  const JobResources& r = request.resources;
  check_positive(r.nodes, "--nodes");
  check_positive(r.tasks_per_node, "--tasks-per-node");
  if (r.min_nodes < 0 || r.min_nodes > r.nodes) {
    throw UsageError(fmt::format(
        "--min-nodes {} is outside 1..--nodes {}; give the fewest nodes the job may start on",
        r.min_nodes, r.nodes));
  }
  if (r.gpus_per_node < 0 || r.cpus_per_task < 0) {
    throw UsageError("--gpus-per-node and --cpus-per-task must not be negative");
  }
  if (r.gpus_per_node > 0 && r.tasks_per_node != r.gpus_per_node) {
    throw UsageError(fmt::format(
        "--tasks-per-node {} with --gpus-per-node {}: tessera runs one rank per GPU; ask for "
        "--tasks-per-node {}",
        r.tasks_per_node, r.gpus_per_node, r.gpus_per_node));
  }
  if (r.time_limit_s < 60) {
    throw UsageError(
        fmt::format("--time {} is under a minute, Slurm's smallest limit; ask for "
                    "at least 00:01:00",
                    format_time_limit(r.time_limit_s)));
  }
  if (request.signal_grace_s == -1) request.signal_grace_s = default_signal_grace(r.time_limit_s);
  if (request.signal_grace_s < 0 || request.signal_grace_s > 65535) {
    throw UsageError(
        fmt::format("--signal-grace {} is outside 0..65535 seconds (Slurm's range); "
                    "pick e.g. 300",
                    request.signal_grace_s));
  }
  if (request.signal_grace_s >= r.time_limit_s) {
    throw UsageError(fmt::format(
        "--signal-grace {} s is not shorter than --time {} ({} s): the job would be told to stop "
        "as it starts; lower --signal-grace or raise --time",
        request.signal_grace_s, format_time_limit(r.time_limit_s), r.time_limit_s));
  }
  if (request.max_requeues < 0) {
    throw UsageError(fmt::format("--max-requeues {} must not be negative", request.max_requeues));
  }
}

/// Warnings for layouts that work but are slow: a tensor-parallel group split over nodes.
void warn_about_placement(const JobPlan& plan, const GridShape& shape, const Config& config,
                          std::vector<std::string>& warnings) {
  const int tasks = plan.request.resources.tasks_per_node;
  const bool tp_fastest = config.parallel.order.rfind("tp", 0) == 0;
  if (plan.request.resources.nodes > 1 && shape.tp > 1 && (!tp_fastest || tasks % shape.tp != 0)) {
    warnings.push_back(fmt::format(
        "tensor-parallel groups of {} ranks ({}) cross node boundaries with {} tasks per node; "
        "every layer's all-reduce then goes over the network (use order \"tp-dp-pp\" and a tp "
        "that divides --tasks-per-node)",
        shape.tp, config.parallel.order, tasks));
  }
}

/// An elastic job (--min-nodes) must train on every node count Slurm may give it: dp follows
/// the ranks (parallel.dp = auto), the global batch stays.
void check_smaller_allocations(const JobResources& resources, const Config& config) {
  for (int nodes = resources.fewest_nodes(); nodes < resources.nodes; ++nodes) {
    if (config.parallel.dp != 0) {
      throw UsageError(fmt::format(
          "--min-nodes {} lets Slurm start the job on fewer nodes, but parallel.dp = {} is fixed; "
          "set parallel.dp = \"auto\" so that dp follows the nodes",
          resources.min_nodes, config.parallel.dp));
    }
    try {
      resolve_layout(config, nodes * resources.tasks_per_node);
    } catch (const UsageError& error) {
      throw UsageError(fmt::format("--min-nodes {}: on {} node(s) ({} ranks): {}",
                                   resources.min_nodes, nodes, nodes * resources.tasks_per_node,
                                   error.what()));
    }
  }
}

std::filesystem::path variant_dir(const std::filesystem::path& base, const std::string& label) {
  return base / label;
}

}  // namespace

int default_signal_grace(int time_limit_s) {
  return time_limit_s < 600 ? 0 : std::min(300, time_limit_s / 10);
}

int parse_time_limit(const std::string& text, const std::string& option) {
  static const std::regex pattern(R"((?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2}))");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) {
    throw UsageError(fmt::format("{} '{}' is not HH:MM:SS or D-HH:MM:SS; write e.g. {} 01:30:00",
                                 option, text, option));
  }
  const int days = match[1].matched ? std::stoi(match[1]) : 0;
  const int hours = std::stoi(match[2]), minutes = std::stoi(match[3]),
            seconds = std::stoi(match[4]);
  if (minutes > 59 || seconds > 59 || (match[1].matched && hours > 23) || days > 365) {
    throw UsageError(
        fmt::format("{} '{}' has a field out of range (minutes and seconds 0-59, "
                    "hours 0-23 after a day count); write e.g. {} 1-12:00:00",
                    option, text, option));
  }
  return ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
}

std::string format_time_limit(int seconds) {
  const int days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60;
  if (days > 0) return fmt::format("{}-{:02}:{:02}:{:02}", days, hours, minutes, seconds % 60);
  return fmt::format("{:02}:{:02}:{:02}", hours, minutes, seconds % 60);
}

LayoutVariant parse_layout_variant(const std::string& text) {
  LayoutVariant variant;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    const std::size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (eq == std::string::npos || key.empty() || value.empty() || !is_parallel_key(key)) {
      throw UsageError(fmt::format(
          "--layout '{}': '{}' is not KEY=VALUE with a key of [parallel] (tp, pp, dp, zero, "
          "schedule, ...); write e.g. --layout tp=2,pp=2",
          text, item));
    }
    variant.overrides.push_back("parallel." + key + "=" + value);
    std::string part = key + value;
    for (char& c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    variant.label += (variant.label.empty() ? "" : "-") + part;
    start = end + 1;
  }
  return variant;
}

JobPlan plan_job(const JobRequest& request) {
  JobPlan plan;
  plan.request = request;
  check_resources(plan.request);
  plan.job_name = request.job_name.empty() ? request.config_file.stem().string() : request.job_name;
  check_slurm_name(plan.job_name, request.job_name.empty()
                                      ? "the job name (the config file's; or give --job-name)"
                                      : "--job-name");
  check_slurm_name(request.resources.partition, "--partition", true);
  check_slurm_name(request.resources.account, "--account");
  check_slurm_name(request.resources.qos, "--qos");
  check_directive_path(request.work_dir, "the working directory");
  const Config config = load_config(request.config_file, request.overrides);
  plan.run_dir = config.run.dir;
  plan.log_dir = config.run.dir / "slurm";
  check_directive_path(plan.log_dir, "run.dir");
  const int ranks = request.resources.ranks();
  if (request.layouts.empty()) {
    check_smaller_allocations(request.resources, config);
    plan.shape = resolve_layout(config, ranks).shape;
    warn_about_placement(plan, plan.shape, config, plan.warnings);
    return plan;
  }
  if (request.resources.fewest_nodes() < request.resources.nodes) {
    throw UsageError(
        "--min-nodes with --layout: each array task of a sweep needs its own fixed number of "
        "nodes; drop --min-nodes");
  }
  for (const std::string& text : request.layouts) {
    LayoutVariant variant = parse_layout_variant(text);
    for (const LayoutVariant& earlier : plan.variants) {
      if (earlier.label == variant.label) {
        throw UsageError(
            fmt::format("--layout {} is given twice; each array task needs its "
                        "own layout",
                        text));
      }
    }
    variant.overrides.push_back("run.dir=" + variant_dir(config.run.dir, variant.label).string());
    if (!config.checkpoint.dir.empty()) {
      variant.overrides.push_back("checkpoint.dir=" +
                                  variant_dir(config.checkpoint.dir, variant.label).string());
    }
    std::vector<std::string> overrides = request.overrides;
    overrides.insert(overrides.end(), variant.overrides.begin(), variant.overrides.end());
    const Config variant_config = load_config(request.config_file, overrides);
    GridShape shape;
    try {
      shape = resolve_layout(variant_config, ranks).shape;
    } catch (const UsageError& error) {
      throw UsageError(fmt::format("--layout {}: {}", text, error.what()));
    }
    warn_about_placement(plan, shape, variant_config, plan.warnings);
    plan.variants.push_back(std::move(variant));
    plan.variant_shapes.push_back(shape);
  }
  plan.shape = plan.variant_shapes.front();
  return plan;
}

}  // namespace tessera
