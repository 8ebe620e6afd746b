#include "io/hf_model/hf_import.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "io/data/tokenizer.hpp"
#include "io/data/tokenizer_spec.hpp"
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

/// The tessera configuration of the imported model: its model keys and tokenizer, the rest the
/// defaults; checked as any configuration is.
Config imported_config(const ModelConfig& model, const std::string& tokenizer_spec) {
  Config config;
  config.model = model;
  config.data.tokenizer = tokenizer_spec;
  return parse_config(to_toml(config), {});
}

/// The checkpoint's tensors: every weight of `architecture` from `weights`, checked first (a
/// bad one writes nothing), in tessera's layout, and zero Adam moments for each.
struct ImportedTensors {
  std::vector<std::vector<float>> values;  ///< one per weight block
  std::vector<float> zeros;                ///< as long as the largest, shared by the moments
  std::vector<TensorBlock> blocks;
  int64_t parameters = 0;
  bool untied_head = false;
};

std::unique_ptr<ImportedTensors> read_tensors(const HfArchitecture& architecture,
                                              const HfWeights& weights, bool tied,
                                              const std::filesystem::path& hf_dir) {
  auto imported = std::make_unique<ImportedTensors>();
  std::size_t largest = 0;
  for (const HfTensor& tensor : architecture.tensors) {
    auto [reader, found] = weights.find(tensor.hf_name);
    if (found == nullptr && tensor.hf_name == "lm_head.weight" && tied) {
      std::tie(reader, found) = weights.find("model.embed_tokens.weight");
      imported->untied_head = true;
    }
    if (found == nullptr) {
      throw UsageError(hf_dir.string() + "'s weights have no tensor " + tensor.hf_name +
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
      imported->parameters += static_cast<int64_t>(parts[p].size());
      imported->values.push_back(std::move(parts[p]));
      TensorBlock block;
      block.name = "model/" + tensor.tessera_names[p];
      block.global_shape = tensor.tessera_shape;
      block.local_shape = tensor.tessera_shape;
      block.global_offset.assign(tensor.tessera_shape.size(), 0);
      block.data = imported->values.back().data();
      imported->blocks.push_back(std::move(block));
    }
  }
  imported->zeros.assign(largest, 0.0f);
  const std::size_t weight_blocks = imported->blocks.size();
  for (std::size_t b = 0; b < weight_blocks; ++b) {
    for (const char* moment : {"optimizer/m/", "optimizer/v/"}) {
      TensorBlock block = imported->blocks[b];
      block.name = moment + block.name.substr(std::string("model/").size());
      block.data = imported->zeros.data();
      imported->blocks.push_back(std::move(block));
    }
  }
  return imported;
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
  // The directory's tokenizer.json, or tessera's byte tokenizer for a model without one.
  const auto tokenizer_file = options.hf_dir / "tokenizer.json";
  const bool has_tokenizer = std::filesystem::is_regular_file(tokenizer_file);
  const std::string tokenizer_spec =
      has_tokenizer ? "hf:" + std::filesystem::absolute(tokenizer_file).string() : "byte";
  const std::unique_ptr<Tokenizer> tokenizer = open_tokenizer(tokenizer_spec);
  if (tokenizer->vocab_size() > model.vocab_size) {
    throw UsageError(tokenizer_file.string() + " has " + std::to_string(tokenizer->vocab_size()) +
                     " tokens, more than the " + std::to_string(model.vocab_size) +
                     " rows of the model's embedding");
  }
  const Config config = imported_config(model, tokenizer_spec);
  const HfArchitecture architecture = hf_architecture(config.model);
  const HfWeights weights(options.hf_dir);
  const bool tied = hf_config->value("tie_word_embeddings", false);

  if (std::filesystem::exists(options.checkpoint_dir) &&
      !CheckpointDirectory(MPI_COMM_SELF, options.checkpoint_dir, 1).list().empty()) {
    throw UsageError("--to " + options.checkpoint_dir.string() +
                     " already holds checkpoints; name a new directory");
  }

  const std::unique_ptr<ImportedTensors> tensors =
      read_tensors(architecture, weights, tied, options.hf_dir);
  nlohmann::json metadata = {
      {"step", 0},
      {"samples_consumed", 0},
      {"config", to_toml(config)},
      {"layout", {{"dp", 1}, {"tp", 1}, {"pp", 1}, {"zero", config.parallel.zero}}},
      {"model_family", model_family_name(config.model.family)},
      {"tokenizer", tokenizer->id()},
      {"vocab_size", tokenizer->vocab_size()},
      {"special_tokens", tokenizer->special_tokens()},
      {"imported_from", std::filesystem::absolute(options.hf_dir).string()}};
  CheckpointDirectory directory(MPI_COMM_SELF, options.checkpoint_dir, 1);
  summary.checkpoint_file = directory.save(0, tensors->blocks, metadata);
  summary.architecture = architecture.name;
  summary.tensors = static_cast<int64_t>(architecture.tensors.size());
  summary.tokenizer = has_tokenizer ? tokenizer->id() : "";
  summary.parameters = tensors->parameters;
  summary.untied_head = tensors->untied_head;
  return summary;
}

}  // namespace tessera
