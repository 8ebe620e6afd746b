// Crash safety: a child process saving checkpoints is SIGKILLed at random moments; after every
// kill the directory must hold no partial file under a final name, `latest` must name a file
// that exists, and the latest valid checkpoint must load with the values of its step.
//
// All fork()s happen before this process initializes MPI; the child execs the writer, which
// initializes MPI as a singleton in its own process group (killed as a group).
// Usage: test_checkpoint_crash WRITER_EXECUTABLE
#include <mpi.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "checkpoint_crash_tensors.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

constexpr int kKills = 8;

/// Starts the writer, kills its process group after `delay`, then hard-links what it left in
/// `run` into `snapshot` (files are only ever renamed or deleted, never rewritten in place).
void kill_writer_after(const char* writer, const fs::path& run, int64_t first_step,
                       std::chrono::milliseconds delay, const fs::path& snapshot) {
  const pid_t child = fork();
  if (child == 0) {
    setpgid(0, 0);
    const std::string step = std::to_string(first_step);
    execl(writer, writer, run.c_str(), step.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(child, child);
  std::this_thread::sleep_for(delay);
  kill(-child, SIGKILL);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  fs::create_directories(snapshot);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run, ec)) {
    fs::create_hard_link(entry.path(), snapshot / entry.path().filename(), ec);
  }
}

/// Checks one snapshot; returns the problems found and sets `loaded` if a checkpoint loaded.
std::vector<std::string> check_snapshot(const fs::path& snapshot, bool& loaded) {
  std::vector<std::string> problems;
  std::ifstream latest_file(snapshot / "latest");
  std::string latest;
  if (std::getline(latest_file, latest) && !fs::exists(snapshot / latest)) {
    problems.push_back("latest names " + latest + ", which does not exist");
  }
  CheckpointDirectory directory(MPI_COMM_SELF, snapshot, 2);
  // Atomicity: every file under a final name is complete, whatever `latest` says.
  for (const auto& entry : directory.list()) {
    try {
      verify_checkpoint(MPI_COMM_SELF, entry.path);
    } catch (const UsageError& error) {
      problems.push_back("partial file under its final name: " + std::string(error.what()));
    }
  }
  const auto valid = directory.latest_valid(
      [&](const std::string& warning) { problems.push_back("partial file: " + warning); });
  if (!directory.list().empty() && !valid) problems.push_back("no valid checkpoint");
  if (!valid) return problems;
  const auto step = read_checkpoint_metadata(MPI_COMM_SELF, valid->path)["step"].get<int64_t>();
  std::vector<std::vector<float>> expected;
  const auto blocks = checkpoint_test::crash_blocks(step, expected);
  std::vector<std::vector<float>> values;
  std::vector<TensorReadRequest> requests;
  for (const TensorBlock& block : blocks) {
    values.emplace_back(expected[requests.size()].size(), 0.0f);
    requests.push_back({block.name, block.global_shape, block.local_shape, block.global_offset,
                        values.back().data()});
  }
  read_checkpoint(MPI_COMM_SELF, valid->path, requests);
  if (values != expected) problems.push_back(valid->path.string() + " holds wrong values");
  loaded = true;
  return problems;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: test_checkpoint_crash WRITER_EXECUTABLE\n";
    return 2;
  }
  char pattern[] = "/tmp/tessera_crash_XXXXXX";
  const fs::path root = mkdtemp(pattern);
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(300, 2000);
  for (int kill = 0; kill < kKills; ++kill) {
    kill_writer_after(argv[1], root / "run", 1000 * kill,
                      std::chrono::milliseconds(delay_ms(random)),
                      root / ("snapshot_" + std::to_string(kill)));
  }
  MPI_Init(&argc, &argv);
  int failures = 0;
  int loaded_count = 0;
  for (int kill = 0; kill < kKills; ++kill) {
    const fs::path snapshot = root / ("snapshot_" + std::to_string(kill));
    bool loaded = false;
    std::vector<std::string> problems;
    try {
      problems = check_snapshot(snapshot, loaded);
    } catch (const std::exception& error) {
      problems.push_back(error.what());
    }
    int files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(snapshot)) ++files;
    std::cout << snapshot.filename().string() << ": " << files << " files, "
              << (loaded ? "loaded" : "nothing to load") << "\n";
    for (const auto& problem : problems) std::cout << "  FAILED: " << problem << "\n";
    failures += static_cast<int>(problems.size());
    loaded_count += loaded ? 1 : 0;
  }
  // Without any loadable checkpoint the test proved nothing: count it as a failure.
  if (loaded_count == 0) {
    std::cout << "FAILED: no snapshot held a checkpoint; the writer never finished one\n";
    ++failures;
  }
  fs::remove_all(root);
  MPI_Finalize();
  std::cout << (failures == 0 ? "crash safety: passed" : "crash safety: FAILED") << std::endl;
  return failures == 0 ? 0 : 1;
}
