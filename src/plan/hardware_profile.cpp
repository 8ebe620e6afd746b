#include "plan/hardware_profile.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/shipped_files.hpp"

namespace tessera {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
const ShippedFileKind kKind{"hardware profile", "TESSERA_HARDWARE_PATH"};

/// The keys of each section ("" is the top level); anything else is refused.
const std::map<std::string, std::set<std::string>> kKeys = {
    {"", {"description", "sources", "backend", "node", "device", "network"}},
    {"node", {"devices", "device_memory_gib", "reserved_gib", "threads_per_device"}},
    {"device", {"peak_tflops", "achievable_tflops", "memory_bandwidth_gb_s", "block_overhead_us"}},
    {"network", {"intra_node_gb_s", "inter_node_gb_s", "latency_us"}},
    {"device.peak_tflops", {"fp32", "bf16"}},
    {"device.achievable_tflops", {"fp32", "bf16"}}};

class ProfileReader {
 public:
  explicit ProfileReader(const std::filesystem::path& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw UsageError(
        fmt::format("hardware profile {}: {} {}; the keys are documented in "
                    "modules/hardware/README.md",
                    file_.string(), key, problem));
  }

  /// Refuses a key the section does not have, in `table` and its sub-tables.
  void check_keys(const toml::table& table, const std::string& section) const {
    const std::set<std::string>& known = kKeys.at(section);
    for (const auto& [key, value] : table) {
      const std::string name(key.str());
      const std::string full = section.empty() ? name : section + "." + name;
      if (!known.contains(name)) fail(full, "is not a key of a hardware profile");
      if (const toml::table* sub = value.as_table()) {
        if (!kKeys.contains(full)) fail(full, "must not be a table");
        check_keys(*sub, full);
      }
    }
  }

  double number(const toml::table& root, const std::string& path, double lo, bool required,
                double fallback = 0.0) const {
    const toml::node_view<const toml::node> node = root.at_path(path);
    if (!node) {
      if (required) fail(path, "is missing");
      return fallback;
    }
    const std::optional<double> value = node.value<double>();
    if (!value || !(*value >= lo)) fail(path, fmt::format("must be a number >= {}", lo));
    return *value;
  }

  std::string text(const toml::table& root, const std::string& key) const {
    const toml::node_view<const toml::node> node = root.at_path(key);
    if (!node) return "";
    if (!node.is_string()) fail(key, "must be a string");
    return std::string(*node.value<std::string>());
  }

 private:
  std::filesystem::path file_;
};

BackendKind backend_named(const ProfileReader& read, const std::string& name) {
  if (name == "cuda") return BackendKind::cuda;
  if (name == "cpu") return BackendKind::cpu;
  if (name == "kokkos") return BackendKind::kokkos;
  read.fail("backend", "must be \"cuda\", \"cpu\" or \"kokkos\"");
}

const char* backend_name(BackendKind backend) {
  switch (backend) {
    case BackendKind::cpu:
      return "cpu";
    case BackendKind::kokkos:
      return "kokkos";
    case BackendKind::cuda:
      break;
  }
  return "cuda";
}

std::vector<std::string> sources_of(const ProfileReader& read, const toml::table& root) {
  std::vector<std::string> sources;
  const toml::node* node = root.get("sources");
  if (node == nullptr) return sources;
  const toml::array* array = node->as_array();
  if (array == nullptr) read.fail("sources", "must be an array of strings");
  for (const toml::node& item : *array) {
    if (!item.is_string()) read.fail("sources", "must be an array of strings");
    sources.emplace_back(*item.value<std::string>());
  }
  return sources;
}

}  // namespace

std::vector<std::filesystem::path> hardware_search_path() {
  return shipped_file_search_path("TESSERA_HARDWARE_PATH", "hardware", TESSERA_SOURCE_HARDWARE);
}

HardwareProfile parse_hardware_profile(const std::string& toml_text, const std::string& name,
                                       const std::filesystem::path& file) {
  toml::table root;
  try {
    root = toml::parse(toml_text, file.string());
  } catch (const toml::parse_error& error) {
    throw UsageError(fmt::format("hardware profile {} line {}: {}; fix the TOML", file.string(),
                                 error.source().begin.line, error.description()));
  }
  const ProfileReader read(file);
  read.check_keys(root, "");
  HardwareProfile profile;
  profile.name = name;
  profile.file = file;
  profile.description = read.text(root, "description");
  profile.sources = sources_of(read, root);
  profile.backend = backend_named(read, read.text(root, "backend"));
  profile.devices_per_node = static_cast<int>(read.number(root, "node.devices", 1, true));
  profile.device_memory_bytes = read.number(root, "node.device_memory_gib", 0.001, true) * kGiB;
  profile.reserved_bytes = read.number(root, "node.reserved_gib", 0, false) * kGiB;
  profile.threads_per_device =
      static_cast<int>(read.number(root, "node.threads_per_device", 1, false, 1));
  if (profile.reserved_bytes >= profile.device_memory_bytes) {
    read.fail("node.reserved_gib", "must be less than node.device_memory_gib");
  }
  profile.peak_tflops = {read.number(root, "device.peak_tflops.fp32", 1e-6, true),
                         read.number(root, "device.peak_tflops.bf16", 0, false)};
  profile.achievable_tflops = {read.number(root, "device.achievable_tflops.fp32", 1e-6, true),
                               read.number(root, "device.achievable_tflops.bf16", 0, false)};
  profile.memory_bandwidth_gb_s = read.number(root, "device.memory_bandwidth_gb_s", 1e-3, true);
  profile.block_overhead_us = read.number(root, "device.block_overhead_us", 0, false);
  profile.intra_node_gb_s = read.number(root, "network.intra_node_gb_s", 1e-3, true);
  profile.inter_node_gb_s = read.number(root, "network.inter_node_gb_s", 1e-3, true);
  profile.latency_us = read.number(root, "network.latency_us", 0, false);
  return profile;
}

HardwareProfile load_hardware_profile(const std::string& name_or_file,
                                      const std::vector<std::filesystem::path>& search_path) {
  const std::filesystem::path file = find_shipped_toml(name_or_file, search_path, kKind);
  return parse_hardware_profile(read_shipped_file(file, kKind), file.stem().string(), file);
}

std::string to_toml(const HardwareProfile& profile) {
  toml::array sources;
  for (const std::string& source : profile.sources) sources.push_back(source);
  auto rates = [](const PrecisionRates& r) {
    return toml::table{{"fp32", r.fp32}, {"bf16", r.bf16}};
  };
  const toml::table root{
      {"description", profile.description},
      {"sources", sources},
      {"backend", backend_name(profile.backend)},
      {"node", toml::table{{"devices", profile.devices_per_node},
                           {"device_memory_gib", profile.device_memory_bytes / kGiB},
                           {"reserved_gib", profile.reserved_bytes / kGiB},
                           {"threads_per_device", profile.threads_per_device}}},
      {"device", toml::table{{"peak_tflops", rates(profile.peak_tflops)},
                             {"achievable_tflops", rates(profile.achievable_tflops)},
                             {"memory_bandwidth_gb_s", profile.memory_bandwidth_gb_s},
                             {"block_overhead_us", profile.block_overhead_us}}},
      {"network", toml::table{{"intra_node_gb_s", profile.intra_node_gb_s},
                              {"inter_node_gb_s", profile.inter_node_gb_s},
                              {"latency_us", profile.latency_us}}}};
  std::ostringstream out;
  out << root << "\n";
  return out.str();
}

}  // namespace tessera
