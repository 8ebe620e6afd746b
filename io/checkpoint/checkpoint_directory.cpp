// CheckpointDirectory: step_NNNNNNNNN.h5 files, a `latest` pointer and keep-last-N retention.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera {

using namespace checkpoint_detail;

namespace {

constexpr const char* kLatestFile = "latest";

/// Steps of the complete checkpoints in `directory`, ascending, as this process sees them.
std::vector<int64_t> scan_steps(const std::filesystem::path& directory) {
  static const std::regex pattern(R"(step_(\d{1,18})\.h5)");
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& item : std::filesystem::directory_iterator(directory, ec)) {
    std::smatch match;
    const std::string name = item.path().filename().string();
    // Only regular files (or links to them): opening a FIFO named like a checkpoint would block.
    if (std::regex_match(name, match, pattern) && item.is_regular_file(ec))
      steps.push_back(std::stoll(match[1].str()));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

/// The file name `latest` holds, or "" (rank 0's view, like every directory read here).
std::string read_latest(const std::filesystem::path& directory) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(directory / kLatestFile, ec)) return "";  // not a FIFO
  std::ifstream in(directory / kLatestFile);
  std::string name;
  std::getline(in, name);
  return name;
}

/// Writes `latest` naming `target` (a file name in the same directory): temp file, fsync,
/// rename, fsync of the directory. Rank 0 only.
std::optional<std::string> point_latest(const std::filesystem::path& directory,
                                        const std::string& target) {
  const auto temp = directory / (std::string(kLatestFile) + ".tmp-" + std::to_string(getpid()));
  {
    std::ofstream out(temp, std::ios::trunc);
    out << target << "\n";
    out.close();
    if (!out) return "cannot write " + temp.string() + "; check space and permissions";
  }
  return publish_file(temp, directory / kLatestFile);
}

}  // namespace

CheckpointDirectory::CheckpointDirectory(MPI_Comm comm, std::filesystem::path directory,
                                         int keep_last)
    : comm_(comm), directory_(std::move(directory)), keep_last_(keep_last) {
  if (keep_last_ < 1) {
    throw UsageError("checkpoint keep_last is " + std::to_string(keep_last_) +
                     "; keep at least 1 checkpoint");
  }
}

std::filesystem::path CheckpointDirectory::path_for(int64_t step) const {
  char name[40];
  std::snprintf(name, sizeof(name), "step_%09lld.h5", static_cast<long long>(step));
  return directory_ / name;
}

std::vector<CheckpointDirectory::Entry> CheckpointDirectory::list() const {
  // Rank 0's view, broadcast, so that every rank acts on the same list.
  std::string text = comm_rank(comm_) == 0 ? nlohmann::json(scan_steps(directory_)).dump() : "";
  broadcast_string(comm_, text, 0);
  std::vector<Entry> entries;
  for (int64_t step : nlohmann::json::parse(text).get<std::vector<int64_t>>()) {
    entries.push_back({step, path_for(step)});
  }
  return entries;
}

std::filesystem::path CheckpointDirectory::save(int64_t step,
                                                const std::vector<TensorBlock>& blocks,
                                                const nlohmann::json& metadata,
                                                const std::string& manifest) {
  std::optional<std::string> problem;
  if (comm_rank(comm_) == 0) {
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    if (ec)
      problem = "cannot create checkpoint directory " + directory_.string() + ": " + ec.message();
  }
  agree(comm_, problem);
  const auto file = path_for(step);
  write_checkpoint(comm_, file, blocks, metadata, manifest);
  if (comm_rank(comm_) == 0) {
    problem = point_latest(directory_, file.filename().string());
    // Retention only after the new checkpoint and `latest` are complete.
    const auto steps = scan_steps(directory_);
    for (std::size_t i = 0; !problem && i + static_cast<std::size_t>(keep_last_) < steps.size();
         ++i) {
      std::error_code ec;
      if (steps[i] != step) std::filesystem::remove(path_for(steps[i]), ec);
    }
  }
  agree(comm_, problem);
  return file;
}

std::optional<CheckpointDirectory::Entry> CheckpointDirectory::load_latest(
    const std::function<void(const Entry&)>& load, const Warning& warn) const {
  // `latest` is the commit point of save(): try its target first, then the others, newest
  // first (a file newer than `latest` is complete but its save() did not finish).
  auto entries = list();
  std::string latest = comm_rank(comm_) == 0 ? read_latest(directory_) : "";
  broadcast_string(comm_, latest, 0);
  std::stable_partition(entries.begin(), entries.end(), [&](const Entry& entry) {
    return entry.path.filename().string() != latest;
  });
  auto fall_back = [&](const UsageError& error) {
    if (warn) warn(std::string(error.what()) + "; falling back to the previous checkpoint");
  };
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    bool structure_sound = false;
    try {
      check_structure(comm_, it->path);  // reads no tensor: any problem here is damage
      structure_sound = true;
      load(*it);
      return *it;
    } catch (const CheckpointDamaged& error) {
      fall_back(error);
    } catch (const UsageError& error) {
      // A sound file that does not match what `load` asks for (another model) would not match
      // in an older checkpoint either: the search ends with that message.
      if (structure_sound) throw;
      fall_back(error);
    }
  }
  return std::nullopt;
}

std::optional<CheckpointDirectory::Entry> CheckpointDirectory::latest_valid(
    const Warning& warn) const {
  return load_latest([&](const Entry& entry) { verify_checkpoint(comm_, entry.path); }, warn);
}

}  // namespace tessera
