// `tessera import`: a Hugging Face model directory (GPT2LMHeadModel, LlamaForCausalLM or
// StableLmForCausalLM; config.json and model.safetensors, or model.safetensors.index.json and
// its shards) -> a tessera checkpoint directory to fine-tune from: step 0, the weights at
// tp = pp = dp = 1 (loadable at any layout), zero optimizer moments, the configuration the
// model implies and, when the directory has one, its tokenizer.json's id. Train from it with
// checkpoint.dir set to that directory and data prepared with the same tokenizer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tessera {

struct ImportOptions {
  std::filesystem::path hf_dir;
  std::filesystem::path checkpoint_dir;  ///< must hold no checkpoint yet
  int seq_len = 0;  ///< rotary models: the context to train with (default: config.json's)
};

struct ImportSummary {
  std::filesystem::path checkpoint_file;
  std::string architecture;
  int64_t tensors = 0;
  int64_t parameters = 0;
  std::string tokenizer;     ///< the id recorded, "" when the directory has no tokenizer.json
  bool untied_head = false;  ///< a tied Llama head became tessera's own head/weight
};

/// UsageError, before anything is written, for a directory without config.json or weights, an
/// architecture or option tessera cannot compute, and a tensor that is missing, of the wrong
/// shape or not a float type (each naming the tensor and file).
ImportSummary import_hf_model(const ImportOptions& options);

}  // namespace tessera
