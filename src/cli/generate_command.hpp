// `tessera generate CHECKPOINT --prompt TEXT`: text from a checkpoint's model, on one model
// replica at any tp x pp layout (src/inference/generation.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `generate` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_generate_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
