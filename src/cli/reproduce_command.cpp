// `tessera reproduce`: compare a run manifest with this machine and build, then train again
// with the recorded configuration into a new run directory.
#include "cli/reproduce_command.hpp"

#include <mpi.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "io/config/config.hpp"
#include "io/data/data_loader.hpp"
#include "io/manifest/manifest.hpp"
#include "train/checkpointing.hpp"
#include "train/trainer.hpp"

namespace tessera {
namespace {

struct ReproduceOptions {
  std::string manifest;
  std::string run_dir;  ///< empty: <recorded run.dir>-reproduce
  bool dry_run = false;
};

/// The recorded configuration, retargeted: a new run directory, checkpoints inside it (never
/// the original run's, which would resume it) and no deadline of the original job.
Config replay_config(const nlohmann::json& manifest, const ReproduceOptions& options) {
  Config config = parse_config(latest_config(manifest), {});
  const std::filesystem::path original = config.run.dir;
  config.run.dir = options.run_dir.empty() ? original.string() + "-reproduce" : options.run_dir;
  config.checkpoint.dir.clear();
  config.run.deadline = 0;
  std::error_code error;
  if (std::filesystem::equivalent(config.run.dir, original, error)) {
    throw UsageError("--run-dir " + config.run.dir.string() +
                     " is the recorded run's own directory; pass a new directory");
  }
  const auto checkpoints = checkpoint_directory(config);
  if (std::filesystem::is_directory(checkpoints, error) &&
      !std::filesystem::is_empty(checkpoints, error)) {
    throw UsageError("run directory " + config.run.dir.string() +
                     " already holds checkpoints, so training would resume instead of starting "
                     "afresh; pass --run-dir with a new directory");
  }
  return config;
}

/// This machine and build in the terms of a recorded start: build, layout, hosts, and (on rank
/// 0) data. Collective.
nlohmann::json describe_here(const Config& config, std::vector<std::string>& problems) {
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const int tp = config.parallel.tp, pp = config.parallel.pp;
  const int dp = config.parallel.dp > 0 ? config.parallel.dp : ranks / std::max(1, tp * pp);
  nlohmann::json here = {{"build", describe_build()},
                         {"layout", {{"dp", dp}, {"tp", tp}, {"pp", pp}, {"ranks", ranks}}},
                         {"hosts", gather_hostnames(MPI_COMM_WORLD)}};  // collective
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) return here;  // rank 0 prints: only it re-hashes the data
  try {
    const DataLoader loader = DataLoader::open(config.data, config.model);
    here["data"] = describe_data(config, loader);
    for (const std::string& shard : loader.damaged_shards()) {
      problems.push_back("data shard " + shard +
                         ": its tokens no longer match the checksum in its header");
    }
  } catch (const UsageError& error) {
    here["data"] = {{"source", config.data.source}};
    problems.push_back(std::string("data: ") + error.what());
  }
  return here;
}

/// The parameter checksum of a run's last "final" record in metrics.jsonl, if any.
std::optional<std::string> final_checksum(const std::filesystem::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::optional<std::string> checksum;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.value("kind", "") == "final") {
      checksum = record.value("parameter_checksum", "");
    }
  }
  return checksum;
}

int reproduce(const ReproduceOptions& options, std::ostream& console) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::ostream null_stream(nullptr);
  std::ostream& out = rank == 0 ? console : null_stream;
  const nlohmann::json manifest = read_manifest(options.manifest);
  const nlohmann::json recorded = latest_start(manifest);
  const std::filesystem::path original_dir = parse_config(latest_config(manifest), {}).run.dir;
  const Config config = replay_config(manifest, options);
  std::vector<std::string> problems;
  const nlohmann::json here = describe_here(config, problems);
  std::vector<std::string> lines = manifest_differences(recorded, here);
  lines.insert(lines.end(), problems.begin(), problems.end());
  out << "reproducing the run started " << manifest.value("start_time", "?") << " ("
      << manifest.at("restarts").size() << " restarts) from " << options.manifest << "\n";
  if (lines.empty())
    out << "no differences: same build, libraries, layout, hosts and data\n";
  else
    out << lines.size() << " difference(s) between the recorded run and here:\n";
  for (const std::string& line : lines) out << "  " << line << "\n";
  if (options.dry_run) {
    out << "dry run: would train with the recorded configuration into " << config.run.dir.string()
        << "\n";
    return 0;
  }
  out << "training with the recorded configuration into " << config.run.dir.string() << "\n";
  const TrainResult result = train(config, console);
  if (const int status = exit_status(result); status != 0) return status;
  const auto then = final_checksum(original_dir), now = final_checksum(config.run.dir);
  if (then && now) {
    out << "final parameters: " << (*then == *now ? "identical to" : "DIFFERENT from")
        << " the recorded run (" << *now << (*then == *now ? "" : " here, " + *then + " then")
        << ")\n";
  }
  return 0;
}

}  // namespace

void add_reproduce_command(CLI::App& app, std::function<void()>& action, int& exit_status) {
  auto* cmd = app.add_subcommand(
      "reproduce",
      "Compare a run's manifest with this machine and build, print each difference, then train "
      "again with the recorded configuration into a new run directory");
  auto options = std::make_shared<ReproduceOptions>();
  cmd->add_option("manifest", options->manifest,
                  "<run.dir>/manifest.json, or a checkpoint step_*.h5 (which carries it)")
      ->required();
  cmd->add_option("--run-dir", options->run_dir,
                  "Directory of the new run (default: the recorded run.dir + \"-reproduce\")");
  cmd->add_flag("--dry-run", options->dry_run, "Only compare and print; do not train");
  cmd->callback([&action, &exit_status, options] {
    action = [&exit_status, options] { exit_status = reproduce(*options, std::cout); };
  });
}

}  // namespace tessera
