// `tessera slurm`: writes (and with --submit, submits) the sbatch script of a training run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `slurm` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_slurm_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
