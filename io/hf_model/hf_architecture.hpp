// How a tessera model is a Hugging Face Transformers model: which architecture computes the
// same function, its config.json, and which tessera tensors each of its weights is made of.
//
//   gpt2 family                      GPT2LMHeadModel (gelu_new, tied head; Conv1D weights are
//                                    [in, out], q, k and v one c_attn)
//   openlm family, rmsnorm           LlamaForCausalLM (RMSNorm, SwiGLU, rotary, no biases)
//   openlm family, layernorm         StableLmForCausalLM (LayerNorm with bias, SwiGLU, rotary
//                                    over the whole head: partial_rotary_factor 1.0, no qkv bias)
//
// Both rotary models turn dimension i with i + head_dim/2 (rotate_half), as tessera does, so no
// permutation of q and k is needed. gpt2 with RMSNorm has no Transformers equivalent: refused.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "io/config/config.hpp"

namespace tessera {

/// One weight of the Transformers model and the tessera tensors it is made of: their rows
/// stacked in order (q, k, v for GPT-2's c_attn), then transposed where Transformers stores
/// [in, out] (GPT-2's Conv1D).
struct HfTensor {
  std::string hf_name;
  std::vector<int64_t> hf_shape;
  std::vector<std::string> tessera_names;  ///< without the checkpoint's "model/" prefix
  std::vector<int64_t> tessera_shape;      ///< each part's shape
  bool transposed = false;
};

struct HfArchitecture {
  std::string name;       ///< "GPT2LMHeadModel", ...
  nlohmann::json config;  ///< config.json, without torch_dtype and token ids
  std::vector<HfTensor> tensors;
};

/// The Transformers model that computes what `model` computes. UsageError for an option without
/// an exact equivalent.
HfArchitecture hf_architecture(const ModelConfig& model);

/// The tessera model a Transformers config.json describes (its "architectures"[0] one of the
/// three above). `seq_len` replaces the context length of rotary models when > 0 (their weights
/// do not depend on it); GPT-2's is its n_positions. UsageError naming the key that is missing or
/// has no tessera equivalent (grouped-query attention, rope scaling, another activation).
ModelConfig model_from_hf_config(const nlohmann::json& config, int seq_len);

/// The Transformers weight from its tessera parts (each row-major in tessera_shape).
std::vector<float> to_hf_layout(const HfTensor& tensor,
                                const std::vector<std::vector<float>>& parts);

/// The tessera parts from the Transformers weight (row-major in hf_shape).
std::vector<std::vector<float>> from_hf_layout(const HfTensor& tensor, std::span<const float> hf);

}  // namespace tessera
