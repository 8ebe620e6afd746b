// What `tessera slurm` and `tessera sweep` share when they write job scripts: the command line
// for a script's header, the script file itself, the log directory.
#pragma once

#include <filesystem>
#include <string>

#include "jobs/job_request.hpp"

namespace tessera {

/// How tessera was called, each word shell-quoted (from /proc: CLI11 keeps no copy of argv).
std::string command_line();

/// Writes `script` to `file` and makes it executable; UsageError when it cannot.
void write_script(const std::filesystem::path& file, const std::string& script);

/// Creates the plan's log directory (<run.dir>/slurm); UsageError when it cannot.
void create_log_dir(const JobPlan& plan);

}  // namespace tessera
