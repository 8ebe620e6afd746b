// `tessera export CHECKPOINT --to DIR`: a checkpoint as a Hugging Face model directory
// (io/hf_model/hf_export.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `export` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_export_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
