// `tessera import HF_DIR --to CHECKPOINT_DIR`: a Hugging Face model directory as a tessera
// checkpoint to fine-tune from (io/hf_model/hf_import.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `import` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_import_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
