// A site profile: what a machine's job scripts need besides the request itself (modules to
// load, environment, launcher and its MPI plugin, how GPUs are requested, node sizes to check
// against). Profiles are TOML files in modules/profiles/ (installed to share/tessera/profiles);
// modules/profiles/generic.toml documents every key.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "jobs/job_request.hpp"

namespace tessera {

enum class GpuRequest { gpus_per_node, gres };

struct SiteProfile {
  std::string name;            ///< file stem, e.g. "generic"
  std::filesystem::path file;  ///< where it was read from
  std::string description;     ///< one line, printed into the script
  Launcher launcher = Launcher::srun;
  std::string srun_mpi = "pmix";  ///< srun --mpi=...; empty: the site's MpiDefault
  std::vector<std::string> srun_options;
  std::vector<std::string> mpirun_options;
  GpuRequest gpu_request = GpuRequest::gpus_per_node;
  std::string partition;  ///< default when --partition is not given
  int cpus_per_task = 0;  ///< default when --cpus-per-task is not given (0: none)
  int cpus_per_node = 0;  ///< for checking requests; 0: unknown
  int gpus_per_node = 0;  ///< for checking requests; 0: unknown or none
  bool module_purge = false;
  std::vector<std::string> modules;                              ///< `module load`, in order
  std::vector<std::pair<std::string, std::string>> environment;  ///< export NAME=VALUE, by name
  std::vector<std::string> setup;   ///< further shell lines, verbatim, after the exports
  std::vector<std::string> sbatch;  ///< extra #SBATCH options, e.g. "--hint=nomultithread"
};

/// Directories searched for a profile by name, in order: $TESSERA_PROFILE_PATH (colon-separated),
/// <directory of the tessera binary>/../share/tessera/profiles, the source tree's
/// modules/profiles.
std::vector<std::filesystem::path> profile_search_path();

/// Reads a profile: `name_or_file` is a path (contains '/' or ends in .toml) or a name looked up
/// in `search_path`. UsageError naming the file and the key for anything it does not know, or
/// listing the available profiles when the name is not found.
SiteProfile load_site_profile(const std::string& name_or_file,
                              const std::vector<std::filesystem::path>& search_path);

/// Parses profile text (for tests); `name` and `file` are only used in messages.
SiteProfile parse_site_profile(const std::string& toml_text, const std::string& name,
                               const std::filesystem::path& file);

/// Checks the request against what the profile knows about the site's nodes (CPUs and GPUs per
/// node); UsageError naming the numbers and the fix.
void check_request_fits_site(const JobResources& resources, const SiteProfile& profile);

}  // namespace tessera
