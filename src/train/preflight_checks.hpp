// What a run checks before its first step, so that a problem costs seconds, not the run: the
// directories it will save into, and the token data it will read.
#pragma once

#include <filesystem>
#include <string>

#include "io/config/config.hpp"
#include "io/data/data_loader.hpp"
#include "parallel/communicator.hpp"

namespace tessera {

/// UsageError naming `setting`, the directory, `rank` and the system's reason, then `fix`, when
/// this process cannot do in `directory` what a save does (probe_writable_directory).
void check_writable(const std::filesystem::path& directory, const char* setting, int rank,
                    const char* fix);

/// With data.verify = "open", checks the payload checksums of the token shards, each rank of
/// `world` its share, on as many threads as the node's cores allow; a damaged shard stops every
/// rank (run_agreed) with one line naming it. Collective. Returns the line for the log, or ""
/// when nothing was checked (verify off, or generated data).
std::string verify_token_shards(const DataLoader& data, const DataConfig& config,
                                Communicator& world);

}  // namespace tessera
