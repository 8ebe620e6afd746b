#include "cli/job_files.hpp"

#include <fstream>

#include "core/error.hpp"
#include "jobs/slurm_script.hpp"

namespace tessera {

std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string words, word;
  while (std::getline(in, word, '\0')) {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on " " + string.
    if (!words.empty()) words += ' ';
    words += shell_quote(words.empty() ? std::filesystem::path(word).filename().string() : word);
  }
  return words;
}

void write_script(const std::filesystem::path& file, const std::string& script) {
  std::ofstream out(file);
  out << script;
  out.close();
  if (!out) {
    throw UsageError("cannot write " + file.string() + "; pick a writable --output path");
  }
  std::filesystem::permissions(
      file, std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec,
      std::filesystem::perm_options::add);
}

void create_log_dir(const JobPlan& plan) {
  std::error_code error;
  std::filesystem::create_directories(plan.request.work_dir / plan.log_dir, error);
  if (error) {
    throw UsageError("cannot create the log directory " + plan.log_dir.string() + " (" +
                     error.message() + "); pick a writable run.dir with --set run.dir=PATH");
  }
}

}  // namespace tessera
