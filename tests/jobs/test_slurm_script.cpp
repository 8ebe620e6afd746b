// The rendered batch script: what sbatch reads from it, what runs, and that bash accepts it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "jobs/slurm_script.hpp"

namespace tessera {
namespace {

JobPlan tiny_plan(int nodes, int tasks, std::vector<std::string> overrides = {}) {
  JobRequest request;
  request.config_file = std::filesystem::path(TESSERA_CONFIG_DIR) / "tiny.toml";
  request.overrides = std::move(overrides);
  request.resources.nodes = nodes;
  request.resources.tasks_per_node = tasks;
  request.resources.time_limit_s = 2 * 3600;
  request.tessera = "/opt/tessera/bin/tessera";
  request.work_dir = "/scratch/me";
  return plan_job(request);
}

SiteProfile profile(const std::string& name) {
  return load_site_profile(name, {TESSERA_PROFILE_DIR});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// The options sbatch reads: #SBATCH lines before the first command (it stops looking there).
std::vector<std::string> sbatch_options(const std::string& script) {
  std::vector<std::string> options;
  for (const std::string& line : lines_of(script)) {
    if (line.rfind("#SBATCH ", 0) == 0) {
      options.push_back(line.substr(8));
    } else if (!line.empty() && line[0] != '#') {
      break;
    }
  }
  return options;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

bool has_line(const std::string& script, const std::string& line) {
  return contains(lines_of(script), line);
}

/// bash -n: the script parses.
bool bash_accepts(const std::string& script) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("tessera_script_" + std::to_string(::getpid()) + ".sh");
  std::ofstream(file) << script;
  const int status = std::system(("bash -n " + file.string()).c_str());
  std::filesystem::remove(file);
  return status == 0;
}

TEST(BatchScript, AsksForTheRequestedResources) {
  JobPlan plan = tiny_plan(2, 2, {"parallel.tp=2", "train.micro_batch=8"});
  plan.request.resources.partition = "batch";
  plan.request.resources.account = "proj1";
  plan.request.resources.qos = "normal";
  const std::string script = render_batch_script(plan, profile("generic"), "tessera slurm ...");
  const std::vector<std::string> options = sbatch_options(script);
  for (const char* expected :
       {"--job-name=tiny", "--nodes=2", "--ntasks-per-node=2", "--cpus-per-task=1",
        "--time=02:00:00", "--partition=batch", "--account=proj1", "--qos=normal",
        "--signal=B:USR1@300", "--requeue", "--open-mode=append", "--chdir=/scratch/me",
        "--output=runs/tiny/slurm/%x-%j.out"}) {
    EXPECT_TRUE(contains(options, expected)) << expected << "\n" << script;
  }
  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_NE(script.find("(dp=2 tp=2 pp=1)"), std::string::npos);
  EXPECT_TRUE(bash_accepts(script));
}

TEST(BatchScript, RunsTheTrainingCommandWithTheOverrides) {
  const JobPlan plan = tiny_plan(1, 1, {"train.steps=50", "run.dir=runs/with space"});
  const std::string script = render_batch_script(plan, profile("generic"), "tessera slurm");
  EXPECT_TRUE(has_line(script, "train=(/opt/tessera/bin/tessera train " TESSERA_CONFIG_DIR
                               "/tiny.toml --set train.steps=50 --set 'run.dir=runs/with space')"))
      << script;
  EXPECT_TRUE(has_line(script, "launch=(srun --mpi=pmix --cpus-per-task=1)"));
  EXPECT_TRUE(has_line(script, "log_dir='runs/with space/slurm'"));
  EXPECT_TRUE(has_line(script, "requeue_on_stop=1"));
  EXPECT_TRUE(has_line(script, "max_requeues=20"));
  EXPECT_TRUE(has_line(script, "export OMPI_ALLOW_RUN_AS_ROOT=\"1\""));
  EXPECT_NE(script.find(std::string(run_and_requeue_template())), std::string::npos);
  EXPECT_TRUE(bash_accepts(script));
}

TEST(BatchScript, MpirunLauncherPlacesRanksPerNode) {
  JobPlan plan = tiny_plan(2, 2, {"parallel.tp=2", "train.micro_batch=8"});
  plan.request.launcher = Launcher::mpirun;
  EXPECT_EQ(launcher_words(plan, profile("generic")),
            (std::vector<std::string>{"mpirun", "-np", "4", "--map-by", "ppr:2:node", "-x",
                                      "TESSERA_STARTED_DIR"}));
  plan.request.resources.cpus_per_task = 6;
  EXPECT_EQ(launcher_words(plan, profile("generic")),
            (std::vector<std::string>{"mpirun", "-np", "4", "--map-by", "ppr:2:node:PE=6", "-x",
                                      "TESSERA_STARTED_DIR"}));
  EXPECT_TRUE(bash_accepts(render_batch_script(plan, profile("generic"), "x")));
}

TEST(BatchScript, ElasticJobTakesTheNodesSlurmGives) {
  JobPlan plan = tiny_plan(4, 2, {"parallel.tp=2", "train.micro_batch=2", "train.global_batch=24"});
  plan.request.resources.min_nodes = 2;
  plan = plan_job(plan.request);
  const std::string script = render_batch_script(plan, profile("generic"), "x");
  EXPECT_TRUE(contains(sbatch_options(script), "--nodes=2-4")) << script;
  EXPECT_NE(script.find("on 2-4 node(s) x 2 task(s) = 4-8 ranks"), std::string::npos) << script;
  // srun takes the allocation's tasks; mpirun fills each node it was given.
  EXPECT_TRUE(has_line(script, "launch=(srun --mpi=pmix --cpus-per-task=1)"));
  plan.request.launcher = Launcher::mpirun;
  EXPECT_EQ(
      launcher_words(plan, profile("generic")),
      (std::vector<std::string>{"mpirun", "--map-by", "ppr:2:node", "-x", "TESSERA_STARTED_DIR"}));
  EXPECT_TRUE(bash_accepts(script));
}

TEST(BatchScript, SiteProfileSetsModulesGpusAndEnvironment) {
  JobPlan plan = tiny_plan(1, 4, {"parallel.tp=4"});
  plan.request.resources.gpus_per_node = 4;
  const std::string script =
      render_batch_script(plan, profile("juwels-booster-example"), "tessera slurm");
  const std::vector<std::string> options = sbatch_options(script);
  EXPECT_TRUE(contains(options, "--gres=gpu:4"));
  EXPECT_TRUE(contains(options, "--partition=booster"));
  EXPECT_TRUE(contains(options, "--cpus-per-task=12"));
  EXPECT_TRUE(contains(options, "--hint=nomultithread"));
  EXPECT_TRUE(has_line(script, "module purge"));
  EXPECT_TRUE(has_line(script, "module load Stages/2024"));
  EXPECT_TRUE(has_line(script, "export OMP_NUM_THREADS=12  # one OpenMP thread per CPU of a rank"));
  EXPECT_TRUE(has_line(script, "launch=(srun --cpus-per-task=12 --cpu-bind=cores)"));
  EXPECT_NE(script.find("EXAMPLE (adapt before use)"), std::string::npos);
  EXPECT_TRUE(bash_accepts(script));

  plan.request.resources.gpus_per_node = 4;
  EXPECT_TRUE(contains(sbatch_options(render_batch_script(plan, profile("generic"), "x")),
                       "--gpus-per-node=4"));
}

TEST(BatchScript, ChainJobsDoNotRequeue) {
  JobPlan plan = tiny_plan(1, 1);
  plan.request.requeue_on_stop = false;
  plan.request.signal_grace_s = 0;
  const std::string script = render_batch_script(plan, profile("generic"), "x");
  const std::vector<std::string> options = sbatch_options(script);
  EXPECT_TRUE(contains(options, "--no-requeue"));
  EXPECT_FALSE(contains(options, "--requeue"));
  for (const std::string& option : options)
    EXPECT_EQ(option.rfind("--signal", 0), std::string::npos);
  EXPECT_TRUE(has_line(script, "requeue_on_stop=0"));
}

TEST(BatchScript, LayoutSweepIsAJobArray) {
  JobRequest request = tiny_plan(1, 2, {"train.micro_batch=8"}).request;
  request.layouts = {"tp=2", "tp=1"};
  const JobPlan plan = plan_job(request);
  const std::string script = render_batch_script(plan, profile("generic"), "x");
  const std::vector<std::string> options = sbatch_options(script);
  EXPECT_TRUE(contains(options, "--array=0-1"));
  EXPECT_TRUE(contains(options, "--output=runs/tiny/slurm/%x-%A_%a.out"));
  EXPECT_TRUE(has_line(
      script,
      "  0) train+=(--set parallel.tp=2 --set run.dir=runs/tiny/tp2) ;;  # dp=1 tp=2 pp=1"));
  EXPECT_TRUE(has_line(
      script,
      "  1) train+=(--set parallel.tp=1 --set run.dir=runs/tiny/tp1) ;;  # dp=2 tp=1 pp=1"));
  EXPECT_TRUE(bash_accepts(script));
}

TEST(BatchScript, WarningsAreInTheScript) {
  const std::string script =
      render_batch_script(tiny_plan(2, 1, {"parallel.tp=2"}), profile("generic"), "x");
  EXPECT_NE(script.find("# WARNING: tensor-parallel groups of 2 ranks"), std::string::npos);
}

TEST(ShellQuote, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(shell_quote("train.steps=5"), "train.steps=5");
  EXPECT_EQ(shell_quote("/a/b-c_d.toml"), "/a/b-c_d.toml");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
  EXPECT_EQ(shell_quote(""), "''");
}

}  // namespace
}  // namespace tessera
