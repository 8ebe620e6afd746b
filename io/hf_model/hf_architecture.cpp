#include "io/hf_model/hf_architecture.hpp"

#include <fmt/format.h>

#include <limits>
#include <string>

#include "core/error.hpp"
#include "core/json_numbers.hpp"

namespace tessera {
namespace {

/// A float setting as config.json shows it: the shortest decimal that reads back as the float
/// (1e-05, not 9.999999747378752e-06).
double shortest(float value) { return std::stod(fmt::format("{}", value)); }

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

/// Adds the weights of a norm: its gain, and its bias for LayerNorm.
void add_norm(std::vector<HfTensor>& tensors, const std::string& hf, const std::string& tessera,
              const ModelConfig& model) {
  const int64_t d = model.d_model;
  tensors.push_back({hf + ".weight", {d}, {tessera + "/gain"}, {d}});
  if (model.norm == NormKind::layernorm) {
    tensors.push_back({hf + ".bias", {d}, {tessera + "/bias"}, {d}});
  }
}

HfArchitecture gpt2_architecture(const ModelConfig& model) {
  if (model.norm != NormKind::layernorm) {
    throw UsageError(
        "model.norm = \"rmsnorm\" in the gpt2 family has no Transformers equivalent "
        "(GPT2LMHeadModel uses LayerNorm); export an openlm model with rmsnorm (as Llama) "
        "or a gpt2 model with layernorm");
  }
  const int64_t d = model.d_model, ffn = model.ffn_hidden, vocab = model.vocab_size;
  HfArchitecture gpt2;
  gpt2.name = "GPT2LMHeadModel";
  gpt2.config = {{"architectures", {gpt2.name}},
                 {"model_type", "gpt2"},
                 {"vocab_size", vocab},
                 {"n_positions", model.seq_len},
                 {"n_ctx", model.seq_len},
                 {"n_embd", d},
                 {"n_layer", model.n_layers},
                 {"n_head", model.n_heads},
                 {"n_inner", ffn},
                 {"activation_function", "gelu_new"},
                 {"layer_norm_epsilon", shortest(model.norm_eps)},
                 {"initializer_range", shortest(model.init_std)},
                 {"resid_pdrop", 0.0},
                 {"embd_pdrop", 0.0},
                 {"attn_pdrop", 0.0},
                 {"scale_attn_weights", true},
                 {"scale_attn_by_inverse_layer_idx", false},
                 {"reorder_and_upcast_attn", false},
                 {"tie_word_embeddings", true},
                 {"use_cache", true}};
  auto& t = gpt2.tensors;
  t.push_back({"transformer.wte.weight", {vocab, d}, {"embed/tokens/weight"}, {vocab, d}});
  t.push_back({"transformer.wpe.weight",
               {model.seq_len, d},
               {"embed/positions/weight"},
               {model.seq_len, d}});
  for (int layer = 0; layer < model.n_layers; ++layer) {
    const std::string hf = "transformer.h." + std::to_string(layer) + ".";
    const std::string ours = "layers/" + std::to_string(layer) + "/";
    add_norm(t, hf + "ln_1", ours + "attn_norm", model);
    t.push_back({hf + "attn.c_attn.weight",
                 {d, 3 * d},
                 {ours + "attn/q/weight", ours + "attn/k/weight", ours + "attn/v/weight"},
                 {d, d},
                 true});
    t.push_back({hf + "attn.c_attn.bias",
                 {3 * d},
                 {ours + "attn/q/bias", ours + "attn/k/bias", ours + "attn/v/bias"},
                 {d}});
    t.push_back({hf + "attn.c_proj.weight", {d, d}, {ours + "attn/out/weight"}, {d, d}, true});
    t.push_back({hf + "attn.c_proj.bias", {d}, {ours + "attn/out/bias"}, {d}});
    add_norm(t, hf + "ln_2", ours + "mlp_norm", model);
    t.push_back({hf + "mlp.c_fc.weight", {d, ffn}, {ours + "mlp/fc/weight"}, {ffn, d}, true});
    t.push_back({hf + "mlp.c_fc.bias", {ffn}, {ours + "mlp/fc/bias"}, {ffn}});
    t.push_back({hf + "mlp.c_proj.weight", {ffn, d}, {ours + "mlp/proj/weight"}, {d, ffn}, true});
    t.push_back({hf + "mlp.c_proj.bias", {d}, {ours + "mlp/proj/bias"}, {d}});
  }
  add_norm(t, "transformer.ln_f", "final_norm", model);
  return gpt2;
}

HfArchitecture rotary_architecture(const ModelConfig& model) {
  const bool llama = model.norm == NormKind::rmsnorm;
  const int64_t d = model.d_model, ffn = model.ffn_hidden, vocab = model.vocab_size;
  HfArchitecture arch;
  arch.name = llama ? "LlamaForCausalLM" : "StableLmForCausalLM";
  arch.config = {{"architectures", {arch.name}},
                 {"model_type", llama ? "llama" : "stablelm"},
                 {"vocab_size", vocab},
                 {"hidden_size", d},
                 {"intermediate_size", ffn},
                 {"num_hidden_layers", model.n_layers},
                 {"num_attention_heads", model.n_heads},
                 {"num_key_value_heads", model.n_heads},
                 {"hidden_act", "silu"},
                 {"max_position_embeddings", model.seq_len},
                 {"rope_theta", shortest(model.rotary_base)},
                 {"rope_scaling", nullptr},
                 {"initializer_range", shortest(model.init_std)},
                 {"attention_dropout", 0.0},
                 {"tie_word_embeddings", false},
                 {"use_cache", true}};
  if (llama) {
    arch.config["rms_norm_eps"] = shortest(model.norm_eps);
    arch.config["head_dim"] = model.head_dim();
    arch.config["attention_bias"] = false;
    arch.config["mlp_bias"] = false;
  } else {
    arch.config["layer_norm_eps"] = shortest(model.norm_eps);
    arch.config["partial_rotary_factor"] = 1.0;
    arch.config["use_qkv_bias"] = false;
    arch.config["qk_layernorm"] = false;
    arch.config["use_parallel_residual"] = false;
    arch.config["hidden_dropout"] = 0.0;
  }
  auto& t = arch.tensors;
  t.push_back({"model.embed_tokens.weight", {vocab, d}, {"embed/tokens/weight"}, {vocab, d}});
  for (int layer = 0; layer < model.n_layers; ++layer) {
    const std::string hf = "model.layers." + std::to_string(layer) + ".";
    const std::string ours = "layers/" + std::to_string(layer) + "/";
    add_norm(t, hf + "input_layernorm", ours + "attn_norm", model);
    for (const char* name : {"q", "k", "v"}) {
      t.push_back({hf + "self_attn." + name + "_proj.weight",
                   {d, d},
                   {ours + "attn/" + name + "/weight"},
                   {d, d}});
    }
    t.push_back({hf + "self_attn.o_proj.weight", {d, d}, {ours + "attn/out/weight"}, {d, d}});
    add_norm(t, hf + "post_attention_layernorm", ours + "mlp_norm", model);
    t.push_back({hf + "mlp.gate_proj.weight", {ffn, d}, {ours + "mlp/gate/weight"}, {ffn, d}});
    t.push_back({hf + "mlp.up_proj.weight", {ffn, d}, {ours + "mlp/up/weight"}, {ffn, d}});
    t.push_back({hf + "mlp.down_proj.weight", {d, ffn}, {ours + "mlp/down/weight"}, {d, ffn}});
  }
  add_norm(t, "model.norm", "final_norm", model);
  t.push_back({"lm_head.weight", {vocab, d}, {"head/weight"}, {vocab, d}});
  return arch;
}

// Reading config.json: each key this model needs, checked against what tessera computes.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& config, std::string architecture)
      : config_(config), architecture_(std::move(architecture)) {}

  int positive_int(const char* key) const {
    const auto& value = required(key);
    const auto number = whole_number_in(value, 1, std::numeric_limits<int>::max());
    if (!number) {
      throw UsageError("config.json " + std::string(key) + " = " + value.dump() +
                       " is not a positive integer");
    }
    return static_cast<int>(*number);
  }
  float number(const char* key, float fallback) const {
    if (!config_.contains(key) || config_[key].is_null()) return fallback;
    if (!config_[key].is_number()) {
      throw UsageError("config.json " + std::string(key) + " = " + config_[key].dump() +
                       " is not a number");
    }
    return config_[key].get<float>();
  }
  /// Refuses `key` when present with a value other than `expected`.
  void expect(const char* key, const nlohmann::json& expected, const std::string& why) const {
    if (config_.contains(key) && config_[key] != expected) {
      throw UsageError(architecture_ + " with " + key + " = " + config_[key].dump() +
                       " has no tessera equivalent (" + why + ")");
    }
  }

 private:
  const nlohmann::json& required(const char* key) const {
    if (!config_.contains(key)) {
      throw UsageError("config.json has no " + std::string(key) + ", which " + architecture_ +
                       " needs; is it a complete Transformers config?");
    }
    return config_[key];
  }
  const nlohmann::json& config_;
  std::string architecture_;
};

}  // namespace

HfArchitecture hf_architecture(const ModelConfig& model) {
  TESSERA_CHECK(model.ffn_hidden > 0, "ffn_hidden is derived when the config is loaded");
  return model.family == ModelFamily::gpt2 ? gpt2_architecture(model) : rotary_architecture(model);
}

ModelConfig model_from_hf_config(const nlohmann::json& config, int seq_len) {
  if (!config.is_object() || !config.contains("architectures") ||
      !config["architectures"].is_array() || config["architectures"].empty() ||
      !config["architectures"][0].is_string()) {
    throw UsageError(
        "config.json names no architecture (\"architectures\": [...]); tessera "
        "imports GPT2LMHeadModel, LlamaForCausalLM and StableLmForCausalLM");
  }
  const std::string architecture = config["architectures"][0].get<std::string>();
  const ConfigReader read(config, architecture);
  ModelConfig model;
  if (architecture == "GPT2LMHeadModel") {
    model.family = ModelFamily::gpt2;
    model.norm = NormKind::layernorm;
    model.n_layers = read.positive_int("n_layer");
    model.d_model = read.positive_int("n_embd");
    model.n_heads = read.positive_int("n_head");
    model.seq_len = read.positive_int("n_positions");
    model.vocab_size = read.positive_int("vocab_size");
    model.ffn_hidden = config.contains("n_inner") && !config["n_inner"].is_null()
                           ? read.positive_int("n_inner")
                           : 4 * model.d_model;
    model.norm_eps = read.number("layer_norm_epsilon", 1e-5f);
    const std::string activation = config.value("activation_function", "gelu_new");
    if (activation != "gelu_new" && activation != "gelu_pytorch_tanh") {
      throw UsageError("GPT2LMHeadModel with activation_function = \"" + activation +
                       "\" has no tessera equivalent (tessera's gpt2 uses GELU's tanh form, "
                       "gelu_new)");
    }
    read.expect("scale_attn_weights", true, "attention is scaled by 1/sqrt(head_dim)");
    read.expect("scale_attn_by_inverse_layer_idx", false, "no per-layer attention scale");
    read.expect("tie_word_embeddings", true, "the gpt2 head is the token embedding");
  } else if (architecture == "LlamaForCausalLM" || architecture == "StableLmForCausalLM") {
    const bool llama = architecture == "LlamaForCausalLM";
    model.family = ModelFamily::openlm;
    model.norm = llama ? NormKind::rmsnorm : NormKind::layernorm;
    model.n_layers = read.positive_int("num_hidden_layers");
    model.d_model = read.positive_int("hidden_size");
    model.n_heads = read.positive_int("num_attention_heads");
    model.vocab_size = read.positive_int("vocab_size");
    model.ffn_hidden = read.positive_int("intermediate_size");
    model.seq_len = seq_len > 0 ? seq_len : read.positive_int("max_position_embeddings");
    model.norm_eps = read.number(llama ? "rms_norm_eps" : "layer_norm_eps", 1e-5f);
    model.rotary_base = read.number("rope_theta", 10000.0f);
    read.expect("num_key_value_heads", model.n_heads, "grouped-query attention");
    read.expect("head_dim", model.d_model / model.n_heads, "heads are d_model / n_heads wide");
    read.expect("hidden_act", "silu", "the MLP is SwiGLU");
    read.expect("rope_scaling", nullptr, "rotary positions are not rescaled");
    read.expect("attention_bias", false, "openlm layers have no biases");
    read.expect("mlp_bias", false, "openlm layers have no biases");
    read.expect("use_qkv_bias", false, "openlm layers have no biases");
    read.expect("qk_layernorm", false, "no norm on queries and keys");
    read.expect("use_parallel_residual", false, "attention and MLP run one after the other");
    read.expect("partial_rotary_factor", 1.0, "rotary turns the whole head");
  } else {
    throw UsageError("config.json architecture " + architecture +
                     " is not one tessera imports: GPT2LMHeadModel, LlamaForCausalLM or "
                     "StableLmForCausalLM");
  }
  model.init_std = read.number("initializer_range", 0.02f);
  return model;
}

std::vector<float> to_hf_layout(const HfTensor& tensor,
                                const std::vector<std::vector<float>>& parts) {
  TESSERA_CHECK(parts.size() == tensor.tessera_names.size(), tensor.hf_name);
  std::vector<float> stacked;
  stacked.reserve(static_cast<std::size_t>(element_count(tensor.hf_shape)));
  for (const auto& part : parts) {
    TESSERA_CHECK(static_cast<int64_t>(part.size()) == element_count(tensor.tessera_shape),
                  tensor.hf_name);
    stacked.insert(stacked.end(), part.begin(), part.end());
  }
  if (!tensor.transposed) return stacked;
  // stacked is [rows, columns] (tessera's [out, in] parts on top of each other); Transformers
  // wants [columns, rows].
  const auto columns = static_cast<std::size_t>(tensor.tessera_shape[1]);
  const std::size_t rows = stacked.size() / columns;
  std::vector<float> hf(stacked.size());
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < columns; ++c) hf[c * rows + r] = stacked[r * columns + c];
  }
  return hf;
}

std::vector<std::vector<float>> from_hf_layout(const HfTensor& tensor, std::span<const float> hf) {
  TESSERA_CHECK(static_cast<int64_t>(hf.size()) == element_count(tensor.hf_shape), tensor.hf_name);
  std::vector<float> stacked(hf.begin(), hf.end());
  if (tensor.transposed) {
    const auto columns = static_cast<std::size_t>(tensor.tessera_shape[1]);
    const std::size_t rows = stacked.size() / columns;
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < columns; ++c) stacked[r * columns + c] = hf[c * rows + r];
    }
  }
  const auto part_size = static_cast<std::size_t>(element_count(tensor.tessera_shape));
  std::vector<std::vector<float>> parts;
  for (std::size_t first = 0; first < stacked.size(); first += part_size) {
    parts.emplace_back(stacked.begin() + static_cast<std::ptrdiff_t>(first),
                       stacked.begin() + static_cast<std::ptrdiff_t>(first + part_size));
  }
  return parts;
}

}  // namespace tessera
