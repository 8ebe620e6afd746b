// `tessera sweep`: a scaling study as Slurm job arrays, one point per job size and layout, each a
// short timed run whose result.json `tessera report` collects (doc/scaling.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `sweep` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_sweep_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
