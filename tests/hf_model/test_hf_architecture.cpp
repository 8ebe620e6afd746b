// The Transformers architecture of each tessera family: config.json reads back as the same
// model, weights go to Transformers' layouts and back unchanged, and options Transformers (or
// tessera) cannot compute are refused by name.
#include <gtest/gtest.h>

#include "io/hf_model/hf_architecture.hpp"
#include "tests/support/file_test_util.hpp"

namespace tessera {
namespace {

using testing::usage_error_message;

ModelConfig small_model(ModelFamily family, NormKind norm) {
  ModelConfig model;
  model.family = family;
  model.norm = norm;
  model.n_layers = 3;
  model.d_model = 48;
  model.n_heads = 4;
  model.seq_len = 32;
  model.vocab_size = 300;
  model.ffn_hidden = family == ModelFamily::gpt2 ? 192 : 128;
  model.norm_eps = 1e-6f;
  model.rotary_base = 500000.0f;
  model.init_std = 0.02f;
  return model;
}

TEST(HfArchitecture, ConfigJsonReadsBackAsTheSameModel) {
  for (const auto& [family, norm, name] :
       {std::tuple{ModelFamily::gpt2, NormKind::layernorm, "GPT2LMHeadModel"},
        std::tuple{ModelFamily::openlm, NormKind::rmsnorm, "LlamaForCausalLM"},
        std::tuple{ModelFamily::openlm, NormKind::layernorm, "StableLmForCausalLM"}}) {
    ModelConfig model = small_model(family, norm);
    if (family == ModelFamily::gpt2) model.rotary_base = 10000.0f;  // not in GPT-2's config
    const HfArchitecture architecture = hf_architecture(model);
    EXPECT_EQ(architecture.name, name);
    EXPECT_EQ(model_from_hf_config(architecture.config, 0), model) << name;
    int64_t parameters = 0;
    for (const HfTensor& tensor : architecture.tensors) {
      int64_t count = 1;
      for (int64_t dim : tensor.hf_shape) count *= dim;
      parameters += count;
    }
    const int64_t d = 48, ffn = model.ffn_hidden, vocab = 300;
    const int64_t per_layer =
        family == ModelFamily::gpt2
            ? 4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 4 * d
            : 4 * d * d + 3 * d * ffn + (norm == NormKind::layernorm ? 4 : 2) * d;
    const int64_t outside = family == ModelFamily::gpt2
                                ? vocab * d + 32 * d + 2 * d
                                : 2 * vocab * d + (norm == NormKind::layernorm ? 2 : 1) * d;
    EXPECT_EQ(parameters, 3 * per_layer + outside) << name;
  }
  EXPECT_EQ(model_from_hf_config(
                hf_architecture(small_model(ModelFamily::openlm, NormKind::rmsnorm)).config, 4096)
                .seq_len,
            4096)
      << "a rotary model's context is the trainer's choice";
}

// GPT-2's c_attn holds q, k and v side by side as [in, out]: column j of the Transformers
// weight is row j of tessera's stacked q/k/v.
TEST(HfArchitecture, LayoutsGoThereAndBack) {
  const HfArchitecture gpt2 = hf_architecture(small_model(ModelFamily::gpt2, NormKind::layernorm));
  HfTensor c_attn = gpt2.tensors[4];  // after wte, wpe and ln_1 (gain, bias)
  ASSERT_EQ(c_attn.hf_name, "transformer.h.0.attn.c_attn.weight");
  c_attn.hf_shape = {2, 6};
  c_attn.tessera_shape = {2, 2};
  const std::vector<std::vector<float>> qkv = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
  const std::vector<float> hf = to_hf_layout(c_attn, qkv);
  EXPECT_EQ(hf, (std::vector<float>{1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(from_hf_layout(c_attn, hf), qkv);
  for (const HfTensor& tensor : gpt2.tensors) {
    std::vector<std::vector<float>> parts;
    float next = 0.5f;
    for (std::size_t p = 0; p < tensor.tessera_names.size(); ++p) {
      int64_t count = 1;
      for (int64_t dim : tensor.tessera_shape) count *= dim;
      std::vector<float> part(static_cast<std::size_t>(count));
      for (float& value : part) value = next += 1.0f;
      parts.push_back(std::move(part));
    }
    EXPECT_EQ(from_hf_layout(tensor, to_hf_layout(tensor, parts)), parts) << tensor.hf_name;
  }
}

TEST(HfArchitecture, WhatHasNoEquivalentIsRefusedByName) {
  EXPECT_NE(usage_error_message([] {
              hf_architecture(small_model(ModelFamily::gpt2, NormKind::rmsnorm));
            }).find("rmsnorm"),
            std::string::npos);
  const nlohmann::json llama =
      hf_architecture(small_model(ModelFamily::openlm, NormKind::rmsnorm)).config;
  auto refusal = [](nlohmann::json config) {
    return usage_error_message([&] { model_from_hf_config(config, 0); });
  };
  auto changed = [&](const nlohmann::json& base, const char* key, const nlohmann::json& value) {
    nlohmann::json config = base;
    config[key] = value;
    return refusal(config);
  };
  EXPECT_NE(changed(llama, "num_key_value_heads", 1).find("grouped-query"), std::string::npos);
  EXPECT_NE(
      changed(llama, "rope_scaling", {{"type", "linear"}, {"factor", 2.0}}).find("rope_scaling"),
      std::string::npos);
  EXPECT_NE(changed(llama, "hidden_act", "gelu").find("hidden_act"), std::string::npos);
  EXPECT_NE(changed(llama, "architectures", {"MistralForCausalLM"}).find("MistralForCausalLM"),
            std::string::npos);
  EXPECT_NE(changed(llama, "hidden_size", -4).find("not a positive integer"), std::string::npos);
  nlohmann::json missing = llama;
  missing.erase("intermediate_size");
  EXPECT_NE(refusal(missing).find("has no intermediate_size"), std::string::npos);
  const nlohmann::json stablelm =
      hf_architecture(small_model(ModelFamily::openlm, NormKind::layernorm)).config;
  EXPECT_NE(changed(stablelm, "partial_rotary_factor", 0.25).find("partial_rotary_factor"),
            std::string::npos);
  const nlohmann::json gpt2 =
      hf_architecture(small_model(ModelFamily::gpt2, NormKind::layernorm)).config;
  EXPECT_NE(changed(gpt2, "activation_function", "relu").find("activation_function"),
            std::string::npos);
  EXPECT_NE(refusal(nlohmann::json::object()).find("names no architecture"), std::string::npos);
}

}  // namespace
}  // namespace tessera
