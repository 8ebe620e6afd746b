#include "train/preflight_checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "parallel/agreement.hpp"
#include "train/step_timer.hpp"

namespace tessera {

void check_writable(const std::filesystem::path& directory, const char* setting, int rank,
                    const char* fix) {
  const std::optional<std::string> problem = probe_writable_directory(directory);
  if (problem) {
    throw UsageError(fmt::format("{} {} cannot be written on rank {} ({}); {}", setting,
                                 directory.string(), rank, *problem, fix));
  }
}

std::string verify_token_shards(const DataLoader& data, const DataConfig& config,
                                Communicator& world) {
  if (config.verify == DataVerify::off || data.shard_checksums().empty()) return "";
  // Before the first step the cores are free; ranks on one node share them.
  const int threads =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world.size());
  StepTimer timer;
  run_agreed(world, [&] {
    const std::vector<std::string> damaged =
        data.damaged_shards(world.rank(), world.size(), threads);
    if (damaged.empty()) return;
    const std::string more =
        damaged.size() > 1 ? fmt::format(" (and {} more)", damaged.size() - 1) : "";
    throw UsageError(fmt::format(
        "token shard {}{} of data.source {} no longer matches the checksum tessera prepare "
        "recorded: the data changed since it was prepared; re-run tessera prepare, or set "
        "data.verify = \"off\" to train on it as it is",
        damaged.front(), more, config.source));
  });
  return fmt::format(
      "data: checked the payload checksums of {} shards ({:.2f} GB) in {:.2f} s over {} ranks",
      data.shard_checksums().size(), static_cast<double>(data.payload_bytes()) / 1e9,
      world.all_reduce_max_double(timer.seconds()), world.size());
}

}  // namespace tessera
