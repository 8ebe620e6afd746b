#include "jobs/site_profile.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/shipped_files.hpp"

namespace tessera {
namespace {

const std::set<std::string> kKnownKeys = {
    "description",  "launcher",  "srun_mpi",      "srun_options",  "mpirun_options",
    "gpu_request",  "partition", "cpus_per_task", "cpus_per_node", "gpus_per_node",
    "module_purge", "modules",   "environment",   "setup",         "sbatch"};

class ProfileReader {
 public:
  ProfileReader(const toml::table& table, const std::filesystem::path& file)
      : table_(table), file_(file) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw UsageError(fmt::format("site profile {}: {} {}", file_.string(), key, problem));
  }

  std::string text(const std::string& key, std::string fallback) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    if (!node->is_string()) fail(key, "must be a string");
    return std::string(*node->value<std::string>());
  }

  int count(const std::string& key) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return 0;
    if (!node->is_integer() || *node->value<int64_t>() < 0 || *node->value<int64_t>() > 1 << 20) {
      fail(key, "must be a non-negative integer");
    }
    return static_cast<int>(*node->value<int64_t>());
  }

  bool flag(const std::string& key) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return false;
    if (!node->is_boolean()) fail(key, "must be true or false");
    return *node->value<bool>();
  }

  std::vector<std::string> list(const std::string& key) const {
    std::vector<std::string> items;
    const toml::node* node = table_.get(key);
    if (node == nullptr) return items;
    const toml::array* array = node->as_array();
    if (array == nullptr) fail(key, "must be an array of strings, e.g. [\"a\", \"b\"]");
    for (const toml::node& item : *array) {
      if (!item.is_string()) fail(key, "must be an array of strings, e.g. [\"a\", \"b\"]");
      items.emplace_back(*item.value<std::string>());
    }
    return items;
  }

  std::vector<std::pair<std::string, std::string>> environment() const {
    std::vector<std::pair<std::string, std::string>> variables;
    const toml::node* node = table_.get("environment");
    if (node == nullptr) return variables;
    const toml::table* section = node->as_table();
    if (section == nullptr) fail("environment", "must be a table: [environment] NAME = \"value\"");
    for (const auto& [name, value] : *section) {
      const std::string variable(name.str());
      const bool valid_name = !variable.empty() && !std::isdigit(variable[0]) &&
                              variable.find_first_not_of(
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
      if (!valid_name) fail("environment." + variable, "is not a shell variable name");
      if (!value.is_string()) fail("environment." + variable, "must be a string");
      variables.emplace_back(variable, *value.value<std::string>());
    }
    return variables;
  }

 private:
  const toml::table& table_;
  std::filesystem::path file_;
};

}  // namespace

std::vector<std::filesystem::path> profile_search_path() {
  return shipped_file_search_path("TESSERA_PROFILE_PATH", "profiles", TESSERA_SOURCE_PROFILES);
}

SiteProfile parse_site_profile(const std::string& toml_text, const std::string& name,
                               const std::filesystem::path& file) {
  toml::table table;
  try {
    table = toml::parse(toml_text, file.string());
  } catch (const toml::parse_error& error) {
    throw UsageError(fmt::format("site profile {} line {}: {}; fix the TOML", file.string(),
                                 error.source().begin.line, error.description()));
  }
  for (const auto& [key, value] : table) {
    if (!kKnownKeys.contains(std::string(key.str()))) {
      throw UsageError(
          fmt::format("site profile {}: unknown key '{}'; the keys are documented "
                      "in modules/profiles/generic.toml",
                      file.string(), key.str()));
    }
  }
  const ProfileReader read(table, file);
  SiteProfile profile;
  profile.name = name;
  profile.file = file;
  profile.description = read.text("description", "");
  const std::string launcher = read.text("launcher", "srun");
  if (launcher != "srun" && launcher != "mpirun") read.fail("launcher", "must be srun or mpirun");
  profile.launcher = launcher == "srun" ? Launcher::srun : Launcher::mpirun;
  profile.srun_mpi = read.text("srun_mpi", "pmix");
  profile.srun_options = read.list("srun_options");
  profile.mpirun_options = read.list("mpirun_options");
  const std::string gpu_request = read.text("gpu_request", "gpus-per-node");
  if (gpu_request != "gpus-per-node" && gpu_request != "gres") {
    read.fail("gpu_request", "must be \"gpus-per-node\" or \"gres\"");
  }
  profile.gpu_request = gpu_request == "gres" ? GpuRequest::gres : GpuRequest::gpus_per_node;
  profile.partition = read.text("partition", "");
  profile.cpus_per_task = read.count("cpus_per_task");
  profile.cpus_per_node = read.count("cpus_per_node");
  profile.gpus_per_node = read.count("gpus_per_node");
  profile.module_purge = read.flag("module_purge");
  profile.modules = read.list("modules");
  profile.environment = read.environment();
  profile.setup = read.list("setup");
  profile.sbatch = read.list("sbatch");
  return profile;
}

SiteProfile load_site_profile(const std::string& name_or_file,
                              const std::vector<std::filesystem::path>& search_path) {
  const ShippedFileKind kind{"site profile", "TESSERA_PROFILE_PATH"};
  const std::filesystem::path file = find_shipped_toml(name_or_file, search_path, kind);
  return parse_site_profile(read_shipped_file(file, kind), file.stem().string(), file);
}

void check_request_fits_site(const JobResources& resources, const SiteProfile& profile) {
  if (profile.gpus_per_node > 0 && resources.gpus_per_node > profile.gpus_per_node) {
    throw UsageError(fmt::format(
        "--gpus-per-node {} but a node of site profile '{}' has {} GPUs; "
        "ask for at most {} per node and more nodes",
        resources.gpus_per_node, profile.name, profile.gpus_per_node, profile.gpus_per_node));
  }
  const int cpus_per_task =
      resources.cpus_per_task > 0 ? resources.cpus_per_task : profile.cpus_per_task;
  const int cpus = resources.tasks_per_node * std::max(cpus_per_task, 1);
  if (profile.cpus_per_node > 0 && cpus > profile.cpus_per_node) {
    throw UsageError(fmt::format(
        "--tasks-per-node {} x --cpus-per-task {} = {} CPUs but a node of site profile '{}' has "
        "{}; lower --tasks-per-node or --cpus-per-task",
        resources.tasks_per_node, std::max(cpus_per_task, 1), cpus, profile.name,
        profile.cpus_per_node));
  }
}

}  // namespace tessera
