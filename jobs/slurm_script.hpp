// The sbatch script for a checked job plan: #SBATCH lines, the site's environment, the launcher
// line, and the part that forwards stop signals to the ranks and requeues the job when training
// stops early after a checkpoint (jobs/templates/run_and_requeue.sh, compiled in).
#pragma once

#include <string>
#include <string_view>

#include "jobs/job_request.hpp"
#include "jobs/site_profile.hpp"

namespace tessera {

/// A complete, commented batch script. `command_line` (how it was generated) goes into the
/// header comment. Pure: the same inputs give the same text.
std::string render_batch_script(const JobPlan& plan, const SiteProfile& profile,
                                const std::string& command_line);

/// `text` as one shell word: unchanged when it holds only safe characters, else single-quoted.
std::string shell_quote(std::string_view text);

/// `text` with its control characters written as escapes ("\x0a"), for a comment line of a
/// script (which a newline would end, and the next line run) and for one-line messages.
std::string escape_control_characters(std::string_view text);

/// The launcher line's words before the tessera command, e.g.
/// {"srun", "--mpi=pmix", "--cpus-per-task=12"} or {"mpirun", "-np", "8", ...}.
std::vector<std::string> launcher_words(const JobPlan& plan, const SiteProfile& profile);

/// The signal-forwarding and requeue part of every script (the template file's text).
std::string_view run_and_requeue_template();

}  // namespace tessera
