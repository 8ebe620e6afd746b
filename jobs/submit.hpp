// Submitting scripts with sbatch: one job, or a chain of jobs each starting after the previous
// one succeeded (--dependency=afterok), for runs longer than a job's time limit.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tessera {

/// Runs `sbatch --parsable OPTIONS... SCRIPT` and returns the job id. UsageError (one line)
/// when sbatch is not on PATH or refuses the job, with sbatch's reason.
std::string submit_batch_script(const std::filesystem::path& script,
                                const std::vector<std::string>& sbatch_options = {});

/// Submits `script` `count` times, each job after the previous one with afterok (a failed job
/// cancels the rest: --kill-on-invalid-dep=yes). Returns the job ids in order.
std::vector<std::string> submit_chain(const std::filesystem::path& script, int count);

}  // namespace tessera
