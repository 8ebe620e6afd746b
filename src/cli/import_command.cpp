#include "cli/import_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/single_process.hpp"
#include "io/hf_model/hf_import.hpp"

namespace tessera {

void add_import_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "import",
      "Turn a Hugging Face model directory (GPT-2, Llama, StableLM; safetensors) into a "
      "checkpoint to fine-tune from");
  auto options = std::make_shared<ImportOptions>();
  cmd->add_option("hf_dir", options->hf_dir, "The model directory (config.json, safetensors)")
      ->required();
  cmd->add_option("--to", options->checkpoint_dir,
                  "New checkpoint directory (train with checkpoint.dir set to it)")
      ->required();
  cmd->add_option("--seq-len", options->seq_len,
                  "Rotary models: the context to train with (default: max_position_embeddings)")
      ->check(CLI::PositiveNumber);
  cmd->callback([&action, options] {
    action = [options] {
      require_single_process("import");
      const ImportSummary done = import_hf_model(*options);
      std::cout << fmt::format(
          "import: {} ({}, {} tensors, {:.1f} M parameters) -> {}; tokenizer: {}{}\n",
          options->hf_dir.string(), done.architecture, done.tensors,
          static_cast<double>(done.parameters) / 1e6, done.checkpoint_file.string(),
          done.tokenizer.empty() ? "none in the directory" : done.tokenizer,
          done.untied_head ? "; the tied head became its own head/weight (trained apart)" : "");
    };
  });
}

}  // namespace tessera
