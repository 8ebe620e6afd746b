// Files tessera ships and finds by name (site profiles, hardware profiles): a name is looked up
// in a search path of directories, a path is taken as it is, and a miss lists what is there.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tessera {

/// Where files of one kind are looked for, in order: the directories in the environment
/// variable `env_variable` (colon-separated), <directory of the tessera binary>/../share/tessera/
/// `share_subdir` (an installed tessera), then `source_dir` (a build tree's sources).
std::vector<std::filesystem::path> shipped_file_search_path(
    const char* env_variable, const std::string& share_subdir,
    const std::filesystem::path& source_dir);

/// What a lookup is for, in its messages.
struct ShippedFileKind {
  std::string what;          ///< "site profile", "hardware profile"
  std::string env_variable;  ///< named in the message of a miss
};

/// The file `name_or_file` names: a path (it contains '/' or ends in .toml) that must exist, or
/// NAME.toml in the first directory of `search_path` that has it. Throws UsageError naming the
/// file, or listing the names available when none matches.
std::filesystem::path find_shipped_toml(const std::string& name_or_file,
                                        const std::vector<std::filesystem::path>& search_path,
                                        const ShippedFileKind& kind);

/// The whole text of `file`; UsageError naming `kind.what` when it cannot be read.
std::string read_shipped_file(const std::filesystem::path& file, const ShippedFileKind& kind);

}  // namespace tessera
