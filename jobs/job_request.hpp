// What a Slurm job asks for, and the check that the training configuration's parallel layout
// can run on it, before any script is written.
//
//   JobRequest request = ...;                 // from `tessera slurm` options
//   JobPlan plan = plan_job(request);         // UsageError (one line) when it cannot work
//   std::string script = render_batch_script(plan, profile);   (slurm_script.hpp)
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "parallel/process_grid.hpp"

namespace tessera {

enum class Launcher { srun, mpirun };

/// The resources of one job, as #SBATCH lines will ask for them.
struct JobResources {
  int nodes = 1;
  /// The fewest nodes Slurm may start the job on (sbatch --nodes=MIN-MAX, an elastic job whose
  /// dp follows the nodes it gets); 0: exactly `nodes`.
  int min_nodes = 0;
  int tasks_per_node = 1;  ///< MPI ranks per node
  int gpus_per_node = 0;   ///< 0: no GPUs requested
  int cpus_per_task = 0;   ///< 0: the site profile's default (and none if it has none)
  int time_limit_s = 0;    ///< wall-clock limit
  std::string partition;   ///< empty: the site profile's, else Slurm's default
  std::string account;
  std::string qos;

  int ranks() const { return nodes * tasks_per_node; }
  int fewest_nodes() const { return min_nodes > 0 ? min_nodes : nodes; }
};

/// One entry of a layout sweep (a job array): "tp=2,pp=2" becomes the label "tp2-pp2" and the
/// overrides parallel.tp=2, parallel.pp=2, plus run.dir (and checkpoint.dir when the config
/// sets one) moved into a subdirectory named after the label.
struct LayoutVariant {
  std::string label;
  std::vector<std::string> overrides;
};

/// Everything `tessera slurm` was asked for.
struct JobRequest {
  std::filesystem::path config_file;
  std::vector<std::string> overrides;  ///< --set section.key=value, passed to `tessera train`
  JobResources resources;
  std::string job_name;              ///< empty: the configuration file's stem
  std::vector<std::string> layouts;  ///< sweep entries, e.g. "tp=2,pp=1"; empty: one job
  /// USR1 this long before the limit; 0: no --signal; -1 (default): default_signal_grace().
  int signal_grace_s = -1;
  int max_requeues = 20;             ///< stop requeueing after this many restarts
  bool requeue_on_stop = true;       ///< false inside a chain: the next job resumes instead
  std::optional<Launcher> launcher;  ///< empty: the site profile's
  std::filesystem::path tessera;     ///< the binary the job runs
  std::filesystem::path work_dir;    ///< where the job runs (relative paths start here)
};

/// A request checked against its configuration: ready to render.
struct JobPlan {
  JobRequest request;
  std::string job_name;
  GridShape shape;                        ///< resolved layout (the first variant's in a sweep)
  std::vector<LayoutVariant> variants;    ///< empty unless a sweep
  std::vector<GridShape> variant_shapes;  ///< one per variant
  std::filesystem::path run_dir;          ///< run.dir after the overrides
  std::filesystem::path log_dir;          ///< <run.dir>/slurm: batch and rank logs
  std::vector<std::string> warnings;      ///< legal but probably unintended (one line each)
};

/// Seconds from Slurm's "[D-]HH:MM:SS"; UsageError naming `option` otherwise.
int parse_time_limit(const std::string& text, const std::string& option = "--time");

/// The grace when none is given: 300 s, at most a tenth of the time limit; none (0) under ten
/// minutes, where Slurm's signal (it may come up to a minute early) would cut the job short and
/// the trainer's own time-limit stop is enough.
int default_signal_grace(int time_limit_s);

/// "[D-]HH:MM:SS" as #SBATCH --time takes it.
std::string format_time_limit(int seconds);

/// "tp=2,pp=1" -> {label "tp2-pp1", overrides parallel.tp=2, parallel.pp=1}; the run.dir and
/// checkpoint.dir overrides are added by plan_job.
LayoutVariant parse_layout_variant(const std::string& text);

/// Loads the configuration with the request's overrides (and each sweep variant's), checks the
/// resources (positive counts, one rank per GPU, grace shorter than the time limit) and every
/// layout against nodes x tasks_per_node ranks. UsageError (one line) when anything cannot work.
JobPlan plan_job(const JobRequest& request);

}  // namespace tessera
