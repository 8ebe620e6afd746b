// `tessera reproduce MANIFEST [--run-dir DIR] [--dry-run]` (doc/reproducibility.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Adds the subcommand; when chosen, `action` compares the manifest with this machine and
/// build, prints each difference, then trains again with the recorded configuration into a new
/// run directory (unless --dry-run) and sets `exit_status` as `tessera train` would.
void add_reproduce_command(CLI::App& app, std::function<void()>& action, int& exit_status);

}  // namespace tessera
