// `tessera export`: a checkpoint -> a Hugging Face model directory that Transformers loads with
// AutoModelForCausalLM.from_pretrained and AutoTokenizer.from_pretrained:
//
//   config.json                  the architecture (hf_architecture.hpp), torch_dtype, token ids
//   generation_config.json       bos / eos token ids
//   model.safetensors            the weights; past max_shard_bytes, model-0000i-of-0000n
//                                files with model.safetensors.index.json, as save_pretrained
//   tokenizer.json               the Hugging Face tokenizer the model was trained with, and
//   tokenizer_config.json        its PreTrainedTokenizerFast settings (hf tokenizers only)
//
// The export runs in one process and reads one tensor at a time. The directory appears whole
// or not at all: it is written as OUT.partial and renamed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "io/hf_model/safetensors.hpp"

namespace tessera {

struct ExportOptions {
  std::filesystem::path checkpoint;  ///< a step_*.h5 file or a checkpoint directory (its newest)
  std::filesystem::path output_dir;  ///< must not exist, or be empty
  SafetensorsDtype dtype = SafetensorsDtype::f32;
  uint64_t max_shard_bytes = 5'000'000'000;  ///< save_pretrained's default, "5GB"
  /// The tokenizer.json to ship; by default the one data.tokenizer names or data.source holds.
  std::filesystem::path tokenizer;
};

struct ExportSummary {
  std::filesystem::path checkpoint_file;
  std::string architecture;
  int64_t tensors = 0;
  uint64_t bytes = 0;  ///< of the weight files
  int shards = 0;
  std::string tokenizer;  ///< what was shipped, or why none
};

/// UsageError, before anything is written, for a checkpoint that is not one, a model option
/// Transformers cannot express, an output directory in use, or a tokenizer file that is not the
/// one the model was trained with.
ExportSummary export_hf_model(const ExportOptions& options);

/// The checkpoint file `path` names: itself, or a checkpoint directory's newest intact one.
/// UsageError when there is none.
std::filesystem::path resolve_checkpoint_file(const std::filesystem::path& path);

}  // namespace tessera
