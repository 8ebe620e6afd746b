#include "core/shipped_files.hpp"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace tessera {
namespace {

std::filesystem::path executable_dir() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : self.parent_path();
}

std::string available_names(const std::vector<std::filesystem::path>& search_path) {
  std::set<std::string> names;
  for (const std::filesystem::path& dir : search_path) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      if (entry.path().extension() == ".toml") names.insert(entry.path().stem().string());
    }
  }
  std::string listed;
  for (const std::string& name : names) {
    if (!listed.empty()) listed += ", ";
    listed += name;
  }
  return listed.empty() ? "(none installed)" : listed;
}

}  // namespace

std::vector<std::filesystem::path> shipped_file_search_path(
    const char* env_variable, const std::string& share_subdir,
    const std::filesystem::path& source_dir) {
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv(env_variable)) {
    std::stringstream entries(env);
    for (std::string dir; std::getline(entries, dir, ':');) {
      if (!dir.empty()) dirs.emplace_back(dir);
    }
  }
  const std::filesystem::path exe_dir = executable_dir();
  if (!exe_dir.empty()) dirs.push_back(exe_dir.parent_path() / "share" / "tessera" / share_subdir);
  dirs.push_back(source_dir);
  return dirs;
}

std::filesystem::path find_shipped_toml(const std::string& name_or_file,
                                        const std::vector<std::filesystem::path>& search_path,
                                        const ShippedFileKind& kind) {
  const bool is_path = name_or_file.find('/') != std::string::npos ||
                       std::filesystem::path(name_or_file).extension() == ".toml";
  if (is_path) {
    if (!std::filesystem::is_regular_file(name_or_file)) {
      throw UsageError(kind.what + " file '" + name_or_file +
                       "' not found; pass an existing .toml file or a profile name");
    }
    return name_or_file;
  }
  for (const std::filesystem::path& dir : search_path) {
    if (std::filesystem::is_regular_file(dir / (name_or_file + ".toml"))) {
      return dir / (name_or_file + ".toml");
    }
  }
  throw UsageError(kind.what + " '" + name_or_file +
                   "' not found; pick one of: " + available_names(search_path) +
                   " (or pass a .toml file; " + kind.env_variable + " adds directories)");
}

std::string read_shipped_file(const std::filesystem::path& file, const ShippedFileKind& kind) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    throw UsageError("cannot read " + kind.what + " " + file.string() + "; check its permissions");
  }
  return text.str();
}

}  // namespace tessera
