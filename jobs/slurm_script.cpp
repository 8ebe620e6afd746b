#include "jobs/slurm_script.hpp"

#include <fmt/format.h>

#include <sstream>

namespace tessera {
namespace {

std::string quoted_words(const std::vector<std::string>& words) {
  std::string line;
  for (const std::string& word : words) {
    if (!line.empty()) line += ' ';
    line += shell_quote(word);
  }
  return line;
}

int cpus_per_task(const JobPlan& plan, const SiteProfile& profile) {
  const int requested = plan.request.resources.cpus_per_task;
  return requested > 0 ? requested : profile.cpus_per_task;
}

/// "4", or "3-4" for a job Slurm may start on fewer nodes.
std::string node_count(const JobResources& r) {
  return r.fewest_nodes() == r.nodes ? std::to_string(r.nodes)
                                     : fmt::format("{}-{}", r.fewest_nodes(), r.nodes);
}

void write_header(std::ostream& out, const JobPlan& plan, const SiteProfile& profile,
                  const std::string& command_line) {
  const JobResources& r = plan.request.resources;
  out << "#!/bin/bash\n";
  out << fmt::format("# tessera job '{}': train {} on {} node(s) x {} task(s) = {} ranks",
                     plan.job_name, escape_control_characters(plan.request.config_file.string()),
                     node_count(r), r.tasks_per_node,
                     r.fewest_nodes() == r.nodes
                         ? std::to_string(r.ranks())
                         : fmt::format("{}-{}", r.fewest_nodes() * r.tasks_per_node, r.ranks()));
  if (plan.variants.empty()) {
    out << fmt::format(" ({}).\n", plan.shape.str());
  } else {
    out << fmt::format(", a job array over {} layouts.\n", plan.variants.size());
  }
  out << "# Written by: " << escape_control_characters(command_line) << "\n";
  out << "# Site profile: " << escape_control_characters(profile.name) << " ("
      << escape_control_characters(profile.file.string()) << ")";
  if (!profile.description.empty()) out << ": " << escape_control_characters(profile.description);
  out << "\n";
  out << "# Submit with `sbatch THIS_FILE` (the log directory must exist: tessera slurm --submit\n"
         "# creates it). Stopping and resuming: Slurm sends USR1 "
      << (plan.request.signal_grace_s > 0
              ? fmt::format("{} s before the time limit", plan.request.signal_grace_s)
              : std::string("(no --signal: the trainer watches the time limit itself)"))
      << ";\n# `scancel --signal=USR1 --batch JOBID` does the same by hand. The ranks checkpoint, "
         "stop\n# with status 75 and the job "
      << (plan.request.requeue_on_stop ? "requeues itself" : "ends for the next job of the chain")
      << "; the next run resumes from the checkpoint.\n";
  for (const std::string& warning : plan.warnings) {
    out << "# WARNING: " << escape_control_characters(warning) << "\n";
  }
}

void write_sbatch_lines(std::ostream& out, const JobPlan& plan, const SiteProfile& profile) {
  const JobResources& r = plan.request.resources;
  auto line = [&out](const std::string& option) { out << "#SBATCH " << option << "\n"; };
  line("--job-name=" + plan.job_name);
  line("--nodes=" + node_count(r));
  line(fmt::format("--ntasks-per-node={}", r.tasks_per_node));
  if (const int cpus = cpus_per_task(plan, profile); cpus > 0) {
    line(fmt::format("--cpus-per-task={}", cpus));
  }
  if (r.gpus_per_node > 0) {
    line(profile.gpu_request == GpuRequest::gres
             ? fmt::format("--gres=gpu:{}", r.gpus_per_node)
             : fmt::format("--gpus-per-node={}", r.gpus_per_node));
  }
  line("--time=" + format_time_limit(r.time_limit_s));
  const std::string partition = r.partition.empty() ? profile.partition : r.partition;
  if (!partition.empty()) line("--partition=" + partition);
  if (!r.account.empty()) line("--account=" + r.account);
  if (!r.qos.empty()) line("--qos=" + r.qos);
  if (plan.request.signal_grace_s > 0) {
    line(fmt::format("--signal=B:USR1@{}", plan.request.signal_grace_s));
  }
  line(plan.request.requeue_on_stop ? "--requeue" : "--no-requeue");
  line("--open-mode=append");  // a requeued job appends to its log instead of replacing it
  line("--chdir=" + plan.request.work_dir.string());
  const bool array = !plan.variants.empty();
  line("--output=" + (plan.log_dir / (array ? "%x-%A_%a.out" : "%x-%j.out")).string());
  if (array) line(fmt::format("--array=0-{}", plan.variants.size() - 1));
  for (const std::string& extra : profile.sbatch) line(extra);
}

void write_environment(std::ostream& out, const JobPlan& plan, const SiteProfile& profile) {
  out << "\n# --- Environment (site profile " << profile.name << ") ---\n";
  if (profile.module_purge) out << "module purge\n";
  for (const std::string& module : profile.modules) out << "module load " << module << "\n";
  const int cpus = cpus_per_task(plan, profile);
  out << "export OMP_NUM_THREADS=" << std::max(cpus, 1)
      << "  # one OpenMP thread per CPU of a rank\n";
  for (const auto& [name, value] : profile.environment) {
    out << "export " << name << "=\"" << value << "\"\n";  // "...": the site may use $VARIABLES
  }
  for (const std::string& setup : profile.setup) out << setup << "\n";
}

void write_commands(std::ostream& out, const JobPlan& plan, const SiteProfile& profile) {
  out << "\n# --- What runs ---\n";
  std::vector<std::string> train = {plan.request.tessera.string(), "train",
                                    plan.request.config_file.string()};
  for (const std::string& override_ : plan.request.overrides) {
    train.insert(train.end(), {"--set", override_});
  }
  out << "train=(" << quoted_words(train) << ")\n";
  if (!plan.variants.empty()) {
    out << "# One layout per array task; each trains in its own run.dir.\n";
    out << "case $SLURM_ARRAY_TASK_ID in\n";
    for (std::size_t i = 0; i < plan.variants.size(); ++i) {
      std::vector<std::string> words;
      for (const std::string& override_ : plan.variants[i].overrides) {
        words.insert(words.end(), {"--set", override_});
      }
      out << fmt::format("  {}) train+=({}) ;;  # {}\n", i, quoted_words(words),
                         plan.variant_shapes[i].str());
    }
    out << "  *) echo \"tessera-job: no layout for array task $SLURM_ARRAY_TASK_ID\"; exit 2 ;;\n";
    out << "esac\n";
  }
  out << "launch=(" << quoted_words(launcher_words(plan, profile)) << ")\n";
  out << "log_dir=" << shell_quote(plan.log_dir.string()) << "\n";
  out << "requeue_on_stop=" << (plan.request.requeue_on_stop ? 1 : 0) << "\n";
  out << "max_requeues=" << plan.request.max_requeues << "\n\n";
}

}  // namespace

std::string shell_quote(std::string_view text) {
  const bool safe =
      !text.empty() && text.find_first_not_of(
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                           "_-+=./:,@%") == std::string_view::npos;
  if (safe) return std::string(text);
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  quoted += '\'';
  return quoted;
}

std::string escape_control_characters(std::string_view text) {
  std::string safe;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    safe += byte < 0x20 || byte == 0x7f ? fmt::format("\\x{:02x}", byte) : std::string(1, c);
  }
  return safe;
}

std::vector<std::string> launcher_words(const JobPlan& plan, const SiteProfile& profile) {
  const Launcher launcher = plan.request.launcher.value_or(profile.launcher);
  const int cpus = cpus_per_task(plan, profile);
  std::vector<std::string> words;
  if (launcher == Launcher::srun) {
    words.push_back("srun");
    if (!profile.srun_mpi.empty()) words.push_back("--mpi=" + profile.srun_mpi);
    // Since Slurm 22.05 srun no longer takes --cpus-per-task over from sbatch.
    if (cpus > 0) words.push_back(fmt::format("--cpus-per-task={}", cpus));
    words.insert(words.end(), profile.srun_options.begin(), profile.srun_options.end());
  } else {
    const JobResources& r = plan.request.resources;
    // T ranks per node, each bound to its C cores (Open MPI's ppr:T:node:PE=C).
    std::string map_by = fmt::format("ppr:{}:node", r.tasks_per_node);
    if (cpus > 1) map_by += fmt::format(":PE={}", cpus);
    // An elastic job (--min-nodes) has as many ranks as the nodes Slurm gave it: the mapping
    // alone fills each node of the allocation.
    words = {"mpirun"};
    if (r.fewest_nodes() == r.nodes) words.insert(words.end(), {"-np", std::to_string(r.ranks())});
    words.insert(words.end(), {"--map-by", map_by});
    // mpirun passes only the variables it is told to the ranks on other nodes; srun passes all.
    words.insert(words.end(), {"-x", "TESSERA_STARTED_DIR"});
    words.insert(words.end(), profile.mpirun_options.begin(), profile.mpirun_options.end());
  }
  return words;
}

std::string render_batch_script(const JobPlan& plan, const SiteProfile& profile,
                                const std::string& command_line) {
  std::ostringstream out;
  write_header(out, plan, profile, command_line);
  write_sbatch_lines(out, plan, profile);
  write_environment(out, plan, profile);
  write_commands(out, plan, profile);
  out << run_and_requeue_template();
  return out.str();
}

}  // namespace tessera
