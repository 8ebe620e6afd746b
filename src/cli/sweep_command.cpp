// `tessera sweep CONFIG --nodes 1,2 --tasks-per-node 1,2,4 --time HH:MM:SS -o DIR
// [--layouts auto|"tp=2,pp=2;..."] [--mode strong|weak] [--steps N] [--hardware P] [--dry-run]`.
//
// Every job size (nodes x tasks per node) is one job array through `tessera slurm`'s machinery
// (the same site profile, signals, manifest), one task per layout that divides it; Slurm gives
// every task of an array the same resources, so sizes cannot share one array. Every job asks
// for --exclusive nodes, so that no other job's ranks share the cores a point is timed on. Each
// point trains
// --steps timed steps without a final checkpoint in DIR/<size>/<layout> and leaves result.json
// there; DIR/sweep.json lists every point for `tessera report DIR`, which shows the ones that
// never ran as such. Everything is checked before the first job is submitted.
#include "cli/sweep_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/job_files.hpp"
#include "core/error.hpp"
#include "core/json_file.hpp"
#include "jobs/job_request.hpp"
#include "jobs/site_profile.hpp"
#include "jobs/slurm_script.hpp"
#include "jobs/submit.hpp"
#include "parallel/layout/training_layout.hpp"
#include "plan/allocation_plan.hpp"
#include "plan/hardware_profile.hpp"
#include "plan/scaling_report.hpp"

namespace tessera {
namespace {

struct SweepOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::vector<int> nodes{1};
  std::vector<int> tasks_per_node;
  std::string time;
  std::string layouts = "auto";
  std::string mode = "strong";
  int steps = 10;
  std::string hardware;
  std::string profile = "generic";
  std::string dir;
  std::string partition, account;
  int cpus_per_task = 0, gpus_per_node = 0;
  bool dry_run = false;
};

/// One job size and the array that runs its layouts.
struct SizeJob {
  int nodes = 1, tasks_per_node = 1;
  JobPlan plan;
  std::string name() const { return fmt::format("{}n{}t", nodes, tasks_per_node); }
};

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, separator);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

/// The layouts to try at every size: "auto" is pure data parallelism (without a hardware profile
/// to plan with; see planned_layout).
std::vector<std::string> layout_texts(const std::string& layouts) {
  if (layouts == "auto") return {"tp=1,pp=1"};
  std::vector<std::string> texts = split(layouts, ';');
  if (texts.empty()) throw UsageError("--layouts is empty; give auto or e.g. \"tp=1,pp=1;tp=2\"");
  return texts;
}

/// The layouts of `texts` that can run on `ranks` ranks of `config_file` with `overrides`; a
/// layout that cannot is left out at this size (a line in `notes`); `sizes_fitting` counts the
/// sizes each layout runs at.
std::vector<std::string> layouts_that_fit(const std::vector<std::string>& texts,
                                          const std::filesystem::path& config_file,
                                          const std::vector<std::string>& overrides, int ranks,
                                          std::map<std::string, std::string>& last_reason,
                                          std::map<std::string, int>& sizes_fitting,
                                          std::vector<std::string>& notes) {
  std::vector<std::string> fitting;
  for (const std::string& text : texts) {
    std::vector<std::string> with = overrides;
    for (const std::string& o : parse_layout_variant(text).overrides) with.push_back(o);
    try {
      resolve_layout(load_config(config_file, with), ranks);
      fitting.push_back(text);
      ++sizes_fitting[text];
    } catch (const UsageError& why) {
      last_reason[text] = why.what();
      notes.push_back(fmt::format("{} on {} ranks left out: {}", text, ranks, why.what()));
    }
  }
  return fitting;
}

/// "auto" with a hardware profile: the layout `tessera plan` ranks fastest among those that fit
/// on `nodes` x `tasks` ranks, varying the parallel settings only (the configuration's
/// micro-batch and recomputation stay), as a --layout text. Data parallelism, with a note, where
/// nothing fits or the profile's node has fewer devices than the tasks.
std::string planned_layout(const Config& config, const HardwareProfile& hardware, int nodes,
                           int tasks, std::vector<std::string>& notes) {
  const std::string data_parallel = "tp=1,pp=1";
  AllocationPlan plan;
  try {
    AllocationRequest request;
    request.nodes = nodes;
    request.ranks_per_node = tasks;
    CandidateLimits limits;
    limits.vary_micro_batch = limits.vary_recompute = false;
    plan = plan_allocation(config, hardware, request, limits);
  } catch (const UsageError& why) {
    notes.push_back(
        fmt::format("auto on {} x {} ranks: {}; data parallel there", nodes, tasks, why.what()));
    return data_parallel;
  }
  if (plan.fit.empty()) {
    notes.push_back(fmt::format("auto on {} x {} ranks: no layout fits {}; data parallel there",
                                nodes, tasks, hardware.name));
    return data_parallel;
  }
  const Config& pick = plan.fit.front().candidate.config;
  std::string text = fmt::format("tp={},pp={}", pick.parallel.tp, pick.parallel.pp);
  for (const SettingChange& change : changed_settings(config, pick)) {
    const std::string key = change.key.substr(change.key.find('.') + 1);
    if (!change.key.starts_with("parallel.") || key == "tp" || key == "pp" || key == "dp") {
      continue;
    }
    std::string value = change.after;
    std::erase(value, '"');  // a TOML string; --layout takes the bare word
    if (!value.empty()) text += "," + key + "=" + value;
  }
  return text;
}

void check_options(const SweepOptions& options, const std::filesystem::path& dir) {
  if (options.mode != "strong" && options.mode != "weak") {
    throw UsageError("--mode " + options.mode + " is not strong or weak");
  }
  if (options.steps < 2) {
    throw UsageError(
        fmt::format("--steps {}: a point needs at least 2 steps (the first, which "
                    "allocates, is not timed)",
                    options.steps));
  }
  for (int n : options.nodes) {
    if (n < 1) throw UsageError(fmt::format("--nodes {} must be at least 1", n));
  }
  for (int t : options.tasks_per_node) {
    if (t < 1) throw UsageError(fmt::format("--tasks-per-node {} must be at least 1", t));
  }
  if (std::filesystem::exists(dir / "sweep.json")) {
    throw UsageError((dir / "sweep.json").string() +
                     " exists: that directory holds another sweep; pick a new -o DIR");
  }
}

void run(const SweepOptions& options) {
  const std::filesystem::path dir = std::filesystem::absolute(options.dir).lexically_normal();
  check_options(options, dir);
  const std::filesystem::path config_file =
      std::filesystem::absolute(options.config).lexically_normal();
  const Config base = load_config(config_file, options.overrides);
  SiteProfile site = load_site_profile(options.profile, profile_search_path());
  // Each point has its nodes to itself: another job's ranks on the same cores would be timed
  // as this layout's (and on one node the points then run one after another).
  site.sbatch.push_back("--exclusive");
  const std::vector<std::string> texts = layout_texts(options.layouts);
  std::optional<HardwareProfile> hardware;  // "auto" plans each size's layout with it
  if (options.layouts == "auto" && !options.hardware.empty()) {
    hardware = load_hardware_profile(options.hardware, hardware_search_path());
  }
  const int smallest =
      *std::min_element(options.nodes.begin(), options.nodes.end()) *
      *std::min_element(options.tasks_per_node.begin(), options.tasks_per_node.end());

  SweepDescription sweep{config_file, options.overrides, options.mode, options.hardware, {}};
  std::vector<SizeJob> jobs;
  std::map<std::string, std::string> last_reason;
  std::map<std::string, int> sizes_fitting;
  std::vector<std::string> notes;
  for (int nodes : options.nodes) {
    for (int tasks : options.tasks_per_node) {
      SizeJob job{nodes, tasks, {}};
      const int ranks = nodes * tasks;
      JobRequest request;
      request.config_file = config_file;
      request.overrides = options.overrides;
      for (const std::string& setting :
           {fmt::format("train.steps={}", options.steps), std::string("train.warmup_steps=1"),
            std::string("checkpoint.at_end=false"), std::string("eval.every=0"),
            std::string("log.every=1"), std::string("log.progress=plain"),
            fmt::format("run.dir={}", (dir / job.name()).string())}) {
        request.overrides.push_back(setting);
      }
      if (options.mode == "weak") {  // the batch grows with the job: the same work per rank
        request.overrides.push_back(
            fmt::format("train.global_batch={}", base.train.global_batch * ranks / smallest));
      }
      const std::vector<std::string> size_texts =
          hardware
              ? std::vector<std::string>{planned_layout(load_config(config_file, request.overrides),
                                                        *hardware, nodes, tasks, notes)}
              : texts;
      request.layouts = layouts_that_fit(size_texts, config_file, request.overrides, ranks,
                                         last_reason, sizes_fitting, notes);
      if (request.layouts.empty()) continue;
      request.resources = {.nodes = nodes,
                           .tasks_per_node = tasks,
                           .gpus_per_node = options.gpus_per_node,
                           .cpus_per_task = options.cpus_per_task,
                           .time_limit_s = parse_time_limit(options.time),
                           .partition = options.partition,
                           .account = options.account,
                           .qos = ""};
      request.job_name = "sweep-" + job.name();
      request.max_requeues = 0;
      request.tessera = std::filesystem::read_symlink("/proc/self/exe");
      request.work_dir = std::filesystem::current_path();
      check_request_fits_site(request.resources, site);
      job.plan = plan_job(request);
      for (const LayoutVariant& variant : job.plan.variants) {
        std::vector<std::string> settings = request.overrides;
        settings.insert(settings.end(), variant.overrides.begin(), variant.overrides.end());
        sweep.points.push_back({job.name() + "-" + variant.label, nodes, ranks,
                                std::filesystem::path(job.name()) / variant.label, settings});
      }
      jobs.push_back(std::move(job));
    }
  }
  for (const std::string& text : hardware ? std::vector<std::string>{} : texts) {
    if (sizes_fitting[text] == 0) {
      throw UsageError("--layouts " + text + " runs at no size of the sweep: " + last_reason[text]);
    }
  }
  for (const std::string& note : notes) std::cerr << "tessera sweep: note: " << note << "\n";
  std::filesystem::create_directories(dir);
  write_json_file(dir / "sweep.json", to_json(sweep));
  for (const SizeJob& job : jobs) {
    create_log_dir(job.plan);
    const std::filesystem::path script = job.plan.log_dir / (job.plan.job_name + ".sbatch");
    write_script(script, render_batch_script(job.plan, site, command_line()));
    if (options.dry_run) {
      std::cerr << "tessera sweep: wrote " << script.string() << "\n";
      continue;
    }
    const std::string id = submit_batch_script(script);
    std::cout << id << "\n";
    std::cerr << "tessera sweep: submitted " << job.name() << " (" << job.plan.variants.size()
              << " layout(s)) as job array " << id << "\n";
  }
  std::cerr << "tessera sweep: " << sweep.points.size() << " points in " << dir.string()
            << "; when the jobs are done: tessera report " << dir.string() << "\n";
}

}  // namespace

void add_sweep_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "sweep", "A scaling study: one Slurm job array per job size, one short timed run per layout");
  auto options = std::make_shared<SweepOptions>();
  cmd->add_option("config", options->config, "Configuration file of the runs")->required();
  cmd->add_option("--nodes", options->nodes, "Node counts, e.g. 1,2,4,8")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--tasks-per-node", options->tasks_per_node,
                  "Ranks per node, one or several (e.g. 1,2,4 on one node)")
      ->delimiter(',')
      ->required();
  cmd->add_option("--time", options->time, "Time limit of each job, HH:MM:SS")->required();
  cmd->add_option("-o,--output", options->dir, "The sweep directory (must not hold a sweep)")
      ->required();
  cmd->add_option("--layouts", options->layouts,
                  "auto (with --hardware: the planner's fastest layout that fits at each size, "
                  "parallel settings only; without: data parallel) or layouts separated by ';', "
                  "e.g. \"tp=1,pp=1;tp=2,pp=2\"; one that does not divide a size is left out there")
      ->capture_default_str();
  cmd->add_option("--mode", options->mode,
                  "strong: the configuration's global batch at every size; weak: the batch "
                  "grows with the ranks")
      ->check(CLI::IsMember({"strong", "weak"}))
      ->capture_default_str();
  cmd->add_option("--steps", options->steps, "Steps of each point (the first is not timed)")
      ->capture_default_str();
  cmd->add_option("--hardware", options->hardware,
                  "Hardware profile the report predicts each point with (and --layouts auto "
                  "plans with)");
  cmd->add_option("--profile", options->profile, "Site profile (as for tessera slurm)")
      ->capture_default_str();
  cmd->add_option("--partition", options->partition, "Partition");
  cmd->add_option("--account", options->account, "Account (project) to charge");
  cmd->add_option("--cpus-per-task", options->cpus_per_task, "CPUs per rank");
  cmd->add_option("--gpus-per-node", options->gpus_per_node, "GPUs per node");
  cmd->add_option("--set", options->overrides, "Override one setting of every point (repeatable)")
      ->type_name("SECTION.KEY=VALUE")
      ->allow_extra_args(false);
  cmd->add_flag("--dry-run", options->dry_run,
                "Write sweep.json and the job scripts, submit nothing");
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
