#include "cli/export_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/single_process.hpp"
#include "io/hf_model/hf_export.hpp"

namespace tessera {
namespace {

struct ExportCommandOptions {
  ExportOptions exported;
  std::string dtype = "float32";
  double max_shard_gb = 5.0;
};

void run(ExportCommandOptions& options) {
  require_single_process("export");
  options.exported.dtype = options.dtype == "bfloat16"  ? SafetensorsDtype::bf16
                           : options.dtype == "float16" ? SafetensorsDtype::f16
                                                        : SafetensorsDtype::f32;
  options.exported.max_shard_bytes = static_cast<uint64_t>(options.max_shard_gb * 1e9);
  const ExportSummary done = export_hf_model(options.exported);
  std::cout << fmt::format(
      "export: {} -> {}: {}, {} tensors in {} file(s), {:.1f} MB ({}); tokenizer: {}\n",
      done.checkpoint_file.string(), options.exported.output_dir.string(), done.architecture,
      done.tensors, done.shards, static_cast<double>(done.bytes) / 1e6, options.dtype,
      done.tokenizer);
}

}  // namespace

void add_export_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "export",
      "Write a checkpoint as a Hugging Face model directory (config.json, model.safetensors, "
      "tokenizer) that transformers' AutoModelForCausalLM loads");
  auto options = std::make_shared<ExportCommandOptions>();
  cmd->add_option("checkpoint", options->exported.checkpoint,
                  "A step_*.h5 file, or a checkpoint directory (its newest intact checkpoint)")
      ->required();
  cmd->add_option("--to", options->exported.output_dir, "New directory for the model")->required();
  cmd->add_option("--dtype", options->dtype, "Weights as float32 (exact), bfloat16 or float16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))
      ->capture_default_str();
  cmd->add_option("--max-shard-gb", options->max_shard_gb,
                  "Split the weights into files of at most this many GB")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--tokenizer", options->exported.tokenizer,
                  "The tokenizer.json the data was prepared with (found from the run's "
                  "configuration when left out)");
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
