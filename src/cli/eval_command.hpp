// `tessera eval CHECKPOINT`: validation loss and perplexity per data source, and zero-shot
// multiple-choice tasks, at any layout (src/eval/).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `eval` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_eval_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
