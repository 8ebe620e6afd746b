#include "core/host_facts.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <fstream>
#include <sstream>

namespace tessera {

std::string utc_text(double unix_time) {
  const auto seconds = static_cast<std::time_t>(unix_time);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text.data();
}

std::string host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "?";
  return name.data();
}

namespace {

/// The first number in `path` (a cgroup file), or nullopt when it is missing or says "max".
std::optional<std::size_t> read_bytes(const std::string& path) {
  std::ifstream in(path);
  std::size_t bytes = 0;
  if (in >> bytes) return bytes;
  return std::nullopt;
}

/// What is left under this process's cgroup v2 memory.max, when one is set.
std::optional<std::size_t> cgroup_memory_left() {
  std::ifstream membership("/proc/self/cgroup");
  std::string line;
  while (std::getline(membership, line)) {
    if (!line.starts_with("0::")) continue;  // the v2 hierarchy
    const std::string directory = "/sys/fs/cgroup" + line.substr(3);
    const auto limit = read_bytes(directory + "/memory.max");
    if (!limit) return std::nullopt;
    const std::size_t used = read_bytes(directory + "/memory.current").value_or(0);
    return *limit > used ? *limit - used : 0;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::size_t> available_host_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  std::optional<std::size_t> available;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    std::size_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") available = kib * 1024;
  }
  if (!available) return std::nullopt;
  const std::optional<std::size_t> cgroup = cgroup_memory_left();
  return cgroup ? std::min(*available, *cgroup) : *available;
}

}  // namespace tessera
