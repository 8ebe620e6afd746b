#include "io/hf_model/hf_import.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "io/data/hf/hf_tokenizer.hpp"
#include "io/hf_model/hf_architecture.hpp"
#include "io/hf_model/safetensors.hpp"

namespace tessera {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  return "[" + fmt::format("{}", fmt::join(shape, ", ")) + "]";
}

/// The weights of a model directory: every tensor by name, over one file or an index's shards.
class HfWeights {
 public:
  explicit HfWeights(const std::filesystem::path& dir) {
    const auto single = dir / "model.safetensors", index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(single)) {
      open(single);
    } else if (std::filesystem::exists(index)) {
      const auto json = read_json_file(index);
      if (!json || !json->contains("weight_map") || !(*json)["weight_map"].is_object()) {
        throw UsageError(index.string() +
                         " has no weight_map object; is it a Transformers "
                         "safetensors index?");
      }
      std::map<std::string, bool> files;
      for (const auto& [name, file] : (*json)["weight_map"].items()) {
        if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
          throw UsageError(index.string() + " maps " + name + " to " + file.dump() +
                           ", not a file name in the directory");
        }
        files[file.get<std::string>()] = true;
      }
      for (const auto& [file, unused] : files) open(dir / file);
    } else {
      throw UsageError(dir.string() +
                       " has neither model.safetensors nor "
                       "model.safetensors.index.json; export the model with safetensors "
                       "(save_pretrained's default)");
    }
  }

  /// The tensor called `name` (or, for GPT-2, the same without "transformer."), or nullptr.
  std::pair<const SafetensorsReader*, const SafetensorsTensor*> find(
      const std::string& name) const {
    for (const std::string& candidate :
         {name, name.starts_with("transformer.") ? name.substr(12) : std::string()}) {
      if (candidate.empty()) continue;
      for (const auto& reader : readers_) {
        if (const SafetensorsTensor* tensor = reader->find(candidate)) {
          return {reader.get(), tensor};
        }
      }
    }
    return {nullptr, nullptr};
  }

 private:
  void open(const std::filesystem::path& file) {
    readers_.push_back(std::make_unique<SafetensorsReader>(file));
  }
  std::vector<std::unique_ptr<SafetensorsReader>> readers_;
};

/// The tessera configuration of the imported model: its model keys; the rest default.
Config imported_config(const ModelConfig& model, const std::string& tokenizer_spec) {
  std::ostringstream toml;
  toml << "[model]\n"
       << "family = \"" << (model.family == ModelFamily::gpt2 ? "gpt2" : "openlm") << "\"\n"
       << "n_layers = " << model.n_layers << "\n"
       << "d_model = " << model.d_model << "\n"
       << "n_heads = " << model.n_heads << "\n"
       << "seq_len = " << model.seq_len << "\n"
       << "vocab_size = " << model.vocab_size << "\n"
       << "ffn_hidden = " << model.ffn_hidden << "\n"
       << "norm = \"" << (model.norm == NormKind::rmsnorm ? "rmsnorm" : "layernorm") << "\"\n"
       << fmt::format("norm_eps = {}\nrotary_base = {}\ninit_std = {}\n", model.norm_eps,
                      model.rotary_base, model.init_std)
       << "[data]\ntokenizer = \"" << tokenizer_spec << "\"\n";
  return parse_config(toml.str(), {});
}

}  // namespace

ImportSummary import_hf_model(const ImportOptions& options) {
  ImportSummary summary;
  const auto config_file = options.hf_dir / "config.json";
  if (!std::filesystem::is_regular_file(config_file)) {
    throw UsageError(options.hf_dir.string() +
                     " has no config.json; pass a Transformers model "
                     "directory (what save_pretrained or tessera export writes)");
  }
  const auto hf_config = read_json_file(config_file);
  if (!hf_config) throw UsageError(config_file.string() + " is not valid JSON");
  const ModelConfig model = model_from_hf_config(*hf_config, options.seq_len);
  const auto tokenizer_file = options.hf_dir / "tokenizer.json";
  const bool has_tokenizer = std::filesystem::is_regular_file(tokenizer_file);
  std::unique_ptr<HfTokenizer> tokenizer;
  if (has_tokenizer) {
    tokenizer = std::make_unique<HfTokenizer>(HfTokenizer::load(tokenizer_file));
    if (tokenizer->vocab_size() > model.vocab_size) {
      throw UsageError(tokenizer_file.string() + " has " + std::to_string(tokenizer->vocab_size()) +
                       " tokens, more than the " + std::to_string(model.vocab_size) +
                       " rows of the model's embedding");
    }
  }
  const Config config = imported_config(
      model, has_tokenizer ? "hf:" + std::filesystem::absolute(tokenizer_file).string()
                           : std::string("byte"));
  const HfArchitecture architecture = hf_architecture(config.model);
  const HfWeights weights(options.hf_dir);
  const bool tied = hf_config->value("tie_word_embeddings", false);

  if (std::filesystem::exists(options.checkpoint_dir) &&
      !CheckpointDirectory(MPI_COMM_SELF, options.checkpoint_dir, 1).list().empty()) {
    throw UsageError("--to " + options.checkpoint_dir.string() +
                     " already holds checkpoints; name a new directory");
  }

  // Every tensor is checked before the checkpoint is written: a bad one writes nothing.
  std::vector<std::vector<float>> values;  // one per tessera tensor, in block order
  std::vector<TensorBlock> blocks;
  std::size_t largest = 0;
  for (const HfTensor& tensor : architecture.tensors) {
    auto [reader, found] = weights.find(tensor.hf_name);
    if (found == nullptr && tensor.hf_name == "lm_head.weight" && tied) {
      std::tie(reader, found) = weights.find("model.embed_tokens.weight");
      summary.untied_head = true;
    }
    if (found == nullptr) {
      throw UsageError(options.hf_dir.string() + "'s weights have no tensor " + tensor.hf_name +
                       ", which " + architecture.name + " has; is the directory complete?");
    }
    if (found->shape != tensor.hf_shape) {
      throw UsageError("tensor " + found->name + " of " + reader->path().string() + " has shape " +
                       shape_text(found->shape) + " where config.json implies " +
                       shape_text(tensor.hf_shape));
    }
    auto parts = from_hf_layout(tensor, reader->read_floats(*found));
    for (std::size_t p = 0; p < parts.size(); ++p) {
      largest = std::max(largest, parts[p].size());
      values.push_back(std::move(parts[p]));
      TensorBlock block;
      block.name = "model/" + tensor.tessera_names[p];
      block.global_shape = tensor.tessera_shape;
      block.local_shape = tensor.tessera_shape;
      block.global_offset.assign(tensor.tessera_shape.size(), 0);
      blocks.push_back(std::move(block));
    }
  }
  const std::vector<float> zeros(largest, 0.0f);  // every optimizer moment starts at zero
  const std::size_t weight_blocks = blocks.size();
  for (std::size_t b = 0; b < weight_blocks; ++b) {
    blocks[b].data = values[b].data();
    for (const char* moment : {"optimizer/m/", "optimizer/v/"}) {
      TensorBlock block = blocks[b];
      block.name = moment + block.name.substr(6);
      block.data = zeros.data();
      blocks.push_back(std::move(block));
    }
    summary.parameters += static_cast<int64_t>(values[b].size());
  }

  nlohmann::json metadata = {
      {"step", 0},
      {"samples_consumed", 0},
      {"config", to_toml(config)},
      {"layout", {{"dp", 1}, {"tp", 1}, {"pp", 1}, {"zero", config.parallel.zero}}},
      {"model_family", config.model.family == ModelFamily::gpt2 ? "gpt2" : "openlm"},
      {"tokenizer", tokenizer ? tokenizer->id() : "byte"},
      {"vocab_size", tokenizer ? tokenizer->vocab_size() : 256},
      {"special_tokens",
       tokenizer ? nlohmann::json(tokenizer->special_tokens()) : nlohmann::json::object()},
      {"imported_from", std::filesystem::absolute(options.hf_dir).string()}};
  CheckpointDirectory directory(MPI_COMM_SELF, options.checkpoint_dir, 1);
  summary.checkpoint_file = directory.save(0, blocks, metadata);
  summary.architecture = architecture.name;
  summary.tensors = static_cast<int64_t>(architecture.tensors.size());
  summary.tokenizer = tokenizer ? tokenizer->id() : "";
  return summary;
}

}  // namespace tessera
