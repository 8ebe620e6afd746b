#include "jobs/submit.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace tessera {
namespace {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path == nullptr ? "" : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && access((std::filesystem::path(dir) / program).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

struct CommandResult {
  int status = 0;
  std::string output;  // stdout and stderr together
};

/// The environment this process started with. MPI_Init (the tessera command initialises MPI
/// for every subcommand) adds variables such as OMPI_MCA_orte_hnp_uri and PMIX_* for its
/// singleton; sbatch would hand them to the job, where they make mpirun fail without a word.
std::vector<std::string> environment_at_start() {
  std::ifstream in("/proc/self/environ", std::ios::binary);
  std::vector<std::string> variables;
  for (std::string variable; std::getline(in, variable, '\0');) {
    if (!variable.empty()) variables.push_back(variable);
  }
  return variables;
}

/// Runs `words` (searched on PATH) with the environment at start; stdout and stderr together.
CommandResult run_command(const std::vector<std::string>& words) {
  std::vector<std::string> environment = environment_at_start();
  std::vector<char*> argv, envp;
  for (const std::string& word : words) argv.push_back(const_cast<char*>(word.c_str()));
  for (std::string& variable : environment) envp.push_back(variable.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) throw InternalError("pipe failed for " + words[0]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_ends[0]);
  pid_t pid = 0;
  const int spawned =
      posix_spawnp(&pid, words[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_ends[1]);
  CommandResult result;
  if (spawned != 0) {
    close(pipe_ends[0]);
    throw InternalError(words[0] + " could not be started: " + std::strerror(spawned));
  }
  char buffer[4096];
  for (ssize_t n; (n = read(pipe_ends[0], buffer, sizeof(buffer))) != 0;) {
    if (n > 0) result.output.append(buffer, static_cast<std::size_t>(n));
    if (n < 0 && errno != EINTR) break;
  }
  close(pipe_ends[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

}  // namespace

std::string submit_batch_script(const std::filesystem::path& script,
                                const std::vector<std::string>& sbatch_options) {
  if (!on_path("sbatch")) {
    throw UsageError(
        "sbatch not found on PATH; submit from a Slurm login node, or leave out "
        "--submit and run `sbatch` on the written script yourself");
  }
  std::vector<std::string> words = {"sbatch", "--parsable"};
  words.insert(words.end(), sbatch_options.begin(), sbatch_options.end());
  words.push_back(script.string());
  const CommandResult result = run_command(words);
  // --parsable prints "JOBID" or "JOBID;CLUSTER" as the last line (warnings may come first).
  const std::string output = one_line(result.output);
  const std::size_t last_line = result.output.find_last_of('\n', result.output.size() - 2);
  std::string id = result.output.substr(last_line == std::string::npos ? 0 : last_line + 1);
  id = one_line(id.substr(0, id.find(';')));
  if (result.status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
    throw UsageError(
        fmt::format("sbatch refused {} (exit {}): {}; fix the request (partition, "
                    "account, qos, time, resources) and submit again",
                    script.string(), result.status, output));
  }
  return id;
}

std::vector<std::string> submit_chain(const std::filesystem::path& script, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> options;
    if (!ids.empty()) {
      options = {"--dependency=afterok:" + ids.back(), "--kill-on-invalid-dep=yes"};
    }
    ids.push_back(submit_batch_script(script, options));
  }
  return ids;
}

}  // namespace tessera
