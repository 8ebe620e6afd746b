// The run manifest: what a training run was made of -- build and libraries, configuration,
// layout, hosts, data, Slurm job -- so that it can be run again and every difference between
// then and here can be named (`tessera reproduce`, doc/reproducibility.md).
//
// Rank 0 keeps it as <run.dir>/manifest.json and every checkpoint carries the same JSON as
// its root attribute "manifest". The first start fills the top-level fields; each later start
// (a resume) appends an entry to "restarts", so the history of a requeued run is kept.
#pragma once

#include <mpi.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "io/data/data_loader.hpp"
#include "parallel/hostnames.hpp"  // gather_hostnames, for the manifest's hosts

namespace tessera {

inline constexpr int kManifestVersion = 1;

/// This build: tessera version and git commit (at configure time), compiler, MPI library,
/// HDF5, oneDNN (the BLAS), CUDA runtime (null without CUDA).
nlohmann::json describe_build();

/// The data a run reads: source, tokenizer (id, vocabulary, special tokens), each source's share
/// of the samples and tokens the run's train.steps draw, and each shard's checksum.
nlohmann::json describe_data(const Config& config, const DataLoader& loader);

/// Looks up an environment variable (nullptr when unset); std::getenv in production.
using EnvironmentReader = std::function<const char*(const char*)>;

/// What one start of a run records.
struct RunStart {
  nlohmann::json build;  ///< describe_build()
  Config config;
  int world_size = 1;
  int dp = 1, tp = 1, pp = 1;
  std::vector<std::string> hosts;
  nlohmann::json data;  ///< describe_data()
  int resumed_from_step = 0;
  /// Settings that differ from the restored checkpoint's: [{"key", "checkpoint", "now"}].
  nlohmann::json changed_settings = nlohmann::json::array();
  double unix_time = 0.0;
};

/// The Slurm job this process runs in: job id, array job and task id, restart count (null
/// where unset).
nlohmann::json describe_slurm_job(const EnvironmentReader& environment);

/// A new manifest for a first start (`previous` empty), or `previous` with this start appended
/// to its "restarts".
nlohmann::json record_start(const std::optional<nlohmann::json>& previous, const RunStart& start,
                            const nlohmann::json& slurm);

/// The configuration TOML of the run's latest start.
std::string latest_config(const nlohmann::json& manifest);

/// The latest start's record (the last restart, or the first start) in the manifest's own
/// terms: build, layout, hosts, data, config. What `tessera reproduce` compares.
nlohmann::json latest_start(const nlohmann::json& manifest);

/// One line per difference between a recorded start (latest_start) and this machine and build
/// (same shape), e.g. "build.mpi: recorded 'Open MPI v4.1.4', here 'Open MPI v5.0.3'".
std::vector<std::string> manifest_differences(const nlohmann::json& recorded,
                                              const nlohmann::json& here);

/// Reads manifest.json, or the manifest attribute of a checkpoint (.h5). UsageError when the
/// file is missing or is neither.
nlohmann::json read_manifest(const std::filesystem::path& file);

/// Writes <run_dir>/manifest.json atomically (write_json_file).
void write_manifest(const std::filesystem::path& run_dir, const nlohmann::json& manifest);

/// <run_dir>/manifest.json as it is, or none when missing or unreadable (`problem` says why).
std::optional<nlohmann::json> load_manifest(const std::filesystem::path& run_dir,
                                            std::string& problem);

}  // namespace tessera
