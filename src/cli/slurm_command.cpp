// `tessera slurm CONFIG --nodes N --tasks-per-node T --time HH:MM:SS ...`: checks the request
// against the configuration's parallel layout and the site profile, then writes the batch
// script to stdout or --output, or submits it (--submit; --chain K for K jobs one after another).
#include "cli/slurm_command.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/job_files.hpp"
#include "core/error.hpp"
#include "jobs/job_request.hpp"
#include "jobs/site_profile.hpp"
#include "jobs/slurm_script.hpp"
#include "jobs/submit.hpp"

namespace tessera {
namespace {

struct SlurmOptions {
  JobRequest request;
  std::string config;
  std::string time;
  std::string profile = "generic";
  std::string launcher;
  std::string tessera;
  std::string output;
  bool submit = false;
  int chain = 1;
};

void run_slurm_command(SlurmOptions& options) {
  JobRequest& request = options.request;
  if (options.chain < 1) {
    throw UsageError("--chain " + std::to_string(options.chain) + " must be at least 1");
  }
  if (options.chain > 1 && !options.submit) {
    throw UsageError("--chain submits jobs one after another: add --submit");
  }
  request.work_dir = std::filesystem::current_path();
  request.config_file = std::filesystem::absolute(options.config).lexically_normal();
  request.resources.time_limit_s = parse_time_limit(options.time);
  request.requeue_on_stop = options.chain == 1;  // in a chain the next job resumes instead
  if (!options.launcher.empty()) {
    request.launcher = options.launcher == "srun" ? Launcher::srun : Launcher::mpirun;
  }
  request.tessera = options.tessera.empty() ? std::filesystem::read_symlink("/proc/self/exe")
                                            : std::filesystem::path(options.tessera);
  const SiteProfile profile = load_site_profile(options.profile, profile_search_path());
  check_request_fits_site(request.resources, profile);
  const JobPlan plan = plan_job(request);
  for (const std::string& warning : plan.warnings) {
    std::cerr << "tessera slurm: warning: " << warning << "\n";
  }
  const std::string script = render_batch_script(plan, profile, command_line());
  if (options.output.empty() && !options.submit) {
    std::cout << script;
    return;
  }
  create_log_dir(plan);
  const std::filesystem::path file = options.output.empty()
                                         ? plan.log_dir / (plan.job_name + ".sbatch")
                                         : std::filesystem::path(options.output);
  write_script(file, script);
  if (!options.submit) {
    std::cerr << "tessera slurm: wrote " << file.string() << "; submit it with: sbatch "
              << file.string() << "\n";
    return;
  }
  const std::vector<std::string> ids = submit_chain(file, options.chain);
  for (const std::string& id : ids) std::cout << id << "\n";
  std::cerr << "tessera slurm: submitted " << file.string() << " as job"
            << (ids.size() > 1 ? "s " : " ");
  for (std::size_t i = 0; i < ids.size(); ++i) std::cerr << (i ? " -> " : "") << ids[i];
  std::cerr << (ids.size() > 1 ? " (each after the previous one succeeded)" : "") << "; logs in "
            << plan.log_dir.string() << "\n";
}

}  // namespace

void add_slurm_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "slurm", "Write (or submit) the sbatch script that trains CONFIG on a Slurm cluster");
  auto options = std::make_shared<SlurmOptions>();
  JobRequest& request = options->request;
  JobResources& resources = request.resources;
  cmd->add_option("config", options->config, "Configuration file of the run")->required();
  cmd->add_option("--nodes", resources.nodes, "Nodes")->required();
  cmd->add_option("--min-nodes", resources.min_nodes,
                  "Let Slurm start the job on as few as this many nodes (needs parallel.dp = "
                  "\"auto\": dp follows the nodes, the global batch stays)");
  cmd->add_option("--tasks-per-node", resources.tasks_per_node, "MPI ranks per node")->required();
  cmd->add_option("--time", options->time, "Time limit, HH:MM:SS or D-HH:MM:SS")->required();
  cmd->add_option("--gpus-per-node", resources.gpus_per_node, "GPUs per node (one rank each)");
  cmd->add_option("--cpus-per-task", resources.cpus_per_task,
                  "CPUs per rank (default: the profile's)");
  cmd->add_option("--partition", resources.partition, "Partition (default: the profile's)");
  cmd->add_option("--account", resources.account, "Account (project) to charge");
  cmd->add_option("--qos", resources.qos, "Quality of service");
  cmd->add_option("--profile", options->profile,
                  "Site profile: a name (generic, juwels-booster-example, "
                  "marenostrum5-gpp-example, ...) or a .toml file")
      ->capture_default_str();
  cmd->add_option("--launcher", options->launcher, "srun or mpirun (default: the profile's)")
      ->check(CLI::IsMember({"srun", "mpirun"}));
  cmd->add_option("--set", request.overrides,
                  "Override one setting of the run, passed on to tessera train (repeatable)")
      ->type_name("SECTION.KEY=VALUE")
      ->allow_extra_args(false);  // one value each time, so CONFIG may come last
  cmd->add_option("--layout", request.layouts,
                  "A parallel layout to sweep, e.g. tp=2,pp=2 (repeatable; makes a job array, one "
                  "task and run.dir per layout)")
      ->allow_extra_args(false);
  cmd->add_option("--job-name", request.job_name, "Job name (default: the config file's stem)");
  cmd->add_option("--signal-grace", request.signal_grace_s,
                  "Seconds before the time limit at which Slurm sends USR1 (0: none; default "
                  "300, at most a tenth of --time, none under 10 minutes)");
  cmd->add_option("--max-requeues", request.max_requeues,
                  "Requeue at most this many times after an early stop")
      ->capture_default_str();
  cmd->add_option("--tessera", options->tessera,
                  "The tessera binary the job runs (default: this one)");
  cmd->add_option("-o,--output", options->output, "Write the script here instead of stdout");
  cmd->add_flag("--submit", options->submit,
                "Submit with sbatch (printing the job id); without --output the script is kept "
                "in <run.dir>/slurm/");
  cmd->add_option("--chain", options->chain,
                  "With --submit: K jobs, each starting after the previous one succeeded; an "
                  "early stop hands on to the next job instead of requeueing")
      ->capture_default_str();
  cmd->callback([&action, options] { action = [options] { run_slurm_command(*options); }; });
}

}  // namespace tessera
