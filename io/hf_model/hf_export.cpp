#include "io/hf_model/hf_export.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "io/data/recorded_tokenizer.hpp"
#include "io/data/tokenizer_spec.hpp"
#include "io/hf_model/hf_architecture.hpp"

namespace tessera {
namespace {

const char* torch_dtype(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::bf16:
      return "bfloat16";
    case SafetensorsDtype::f16:
      return "float16";
    default:
      return "float32";
  }
}

/// The begin and end of text among a tokenizer's special tokens, by the names the published
/// tokenizers give them (GPT-2's <|endoftext|> is both).
struct SpecialTokens {
  std::optional<std::pair<std::string, int64_t>> bos, eos;

  explicit SpecialTokens(const nlohmann::json& by_name) {
    auto first_of = [&](const auto& names) {
      std::optional<std::pair<std::string, int64_t>> found;
      for (const std::string_view view : names) {
        const std::string name(view);
        if (!found && by_name.contains(name) && by_name[name].is_number_integer()) {
          found.emplace(name, by_name[name].get<int64_t>());
        }
      }
      return found;
    };
    bos = first_of(kBeginOfTextNames);
    eos = first_of(kEndOfTextNames);
  }
  void add_ids_to(nlohmann::json& json) const {
    if (bos) json["bos_token_id"] = bos->second;
    if (eos) json["eos_token_id"] = eos->second;
  }
  void add_strings_to(nlohmann::json& json) const {
    if (bos) json["bos_token"] = bos->first;
    if (eos) json["eos_token"] = eos->first;
  }
};

/// The output directory must be new or empty: an export never mixes with other files.
void check_output_directory(const std::filesystem::path& dir) {
  std::error_code error;
  if (!std::filesystem::exists(dir, error)) return;
  if (!std::filesystem::is_directory(dir, error) || !std::filesystem::is_empty(dir, error)) {
    throw UsageError("--to " + dir.string() +
                     " exists and is not an empty directory; name a new directory");
  }
}

/// The tokenizer.json the model was trained with, or empty with the reason in `why`.
std::filesystem::path find_tokenizer(const ExportOptions& options, const nlohmann::json& metadata,
                                     const Config& config, std::string& why) {
  const std::string id = metadata.value("tokenizer", std::string());
  if (!id.starts_with("hf:")) {
    if (!options.tokenizer.empty()) {
      throw UsageError("--tokenizer " + options.tokenizer.string() +
                       ": the model was trained "
                       "with the " +
                       (id.empty() ? "unknown" : id) +
                       " tokenizer, not a Hugging Face one; leave --tokenizer out");
    }
    why = "none: the " + (id.empty() ? std::string("unrecorded") : id) +
          " tokenizer has no Hugging Face tokenizer.json";
    return {};
  }
  return std::string(
      tokenizer_spec_file(find_recorded_tokenizer(id, config.data, options.tokenizer)));
}

/// The tensors of each weight file: consecutive, each file under max_shard_bytes (a single
/// tensor larger than that gets a file of its own).
std::vector<std::vector<SafetensorsEntry>> plan_shards(const std::vector<SafetensorsEntry>& all,
                                                       uint64_t max_shard_bytes) {
  std::vector<std::vector<SafetensorsEntry>> shards(1);
  uint64_t bytes = 0;
  for (const auto& entry : all) {
    const uint64_t size = entry.data_bytes();
    if (!shards.back().empty() && bytes + size > max_shard_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(entry);
    bytes += size;
  }
  return shards;
}

std::vector<float> read_tensor(const std::filesystem::path& file, const std::string& name,
                               const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  std::vector<float> values(static_cast<std::size_t>(count));
  TensorReadRequest request;
  request.name = "model/" + name;
  request.global_shape = shape;
  request.local_shape = shape;
  request.global_offset.assign(shape.size(), 0);
  request.data = values.data();
  read_checkpoint(MPI_COMM_SELF, file, {request});
  return values;
}

/// config.json, generation_config.json and, for a Hugging Face tokenizer, tokenizer.json with
/// its tokenizer_config.json.
void write_descriptions(const std::filesystem::path& dir, const HfArchitecture& architecture,
                        SafetensorsDtype dtype, const SpecialTokens& tokens,
                        const std::filesystem::path& tokenizer, int seq_len) {
  nlohmann::json hf_config = architecture.config;
  hf_config["torch_dtype"] = torch_dtype(dtype);
  tokens.add_ids_to(hf_config);
  write_json_file(dir / "config.json", hf_config);
  nlohmann::json generation = {{"_from_model_config", true}};
  tokens.add_ids_to(generation);
  write_json_file(dir / "generation_config.json", generation);
  if (tokenizer.empty()) return;
  std::filesystem::copy_file(tokenizer, dir / "tokenizer.json");
  nlohmann::json tokenizer_config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                     {"model_max_length", seq_len},
                                     {"clean_up_tokenization_spaces", false}};
  tokens.add_strings_to(tokenizer_config);
  write_json_file(dir / "tokenizer_config.json", tokenizer_config);
}

/// The weights, read from the checkpoint one tensor at a time, as model.safetensors or as
/// shards with their index. Returns the number of files; adds their sizes to `bytes`.
int write_weights(const std::filesystem::path& dir, const HfArchitecture& architecture,
                  const std::filesystem::path& checkpoint, const ExportOptions& options,
                  uint64_t& bytes) {
  std::vector<SafetensorsEntry> entries;
  for (const HfTensor& tensor : architecture.tensors) {
    entries.push_back({tensor.hf_name, tensor.hf_shape, options.dtype});
  }
  const auto shards = plan_shards(entries, options.max_shard_bytes);
  const std::map<std::string, std::string> file_metadata = {{"format", "pt"}};  // Transformers
  nlohmann::json weight_map = nlohmann::json::object();
  std::size_t next_tensor = 0;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const std::string file =
        shards.size() == 1 ? "model.safetensors"
                           : fmt::format("model-{:05}-of-{:05}.safetensors", s + 1, shards.size());
    SafetensorsWriter writer(dir / file, shards[s], file_metadata);
    for (std::size_t i = 0; i < shards[s].size(); ++i) {
      const HfTensor& tensor = architecture.tensors[next_tensor++];
      std::vector<std::vector<float>> parts;
      for (const auto& name : tensor.tessera_names) {
        parts.push_back(read_tensor(checkpoint, name, tensor.tessera_shape));
      }
      writer.write(to_hf_layout(tensor, parts));
      weight_map[tensor.hf_name] = file;
    }
    writer.finish();
    bytes += std::filesystem::file_size(dir / file);
  }
  if (shards.size() > 1) {
    uint64_t data_bytes = 0;
    for (const auto& entry : entries) data_bytes += entry.data_bytes();
    write_json_file(dir / "model.safetensors.index.json",
                    {{"metadata", {{"total_size", data_bytes}}}, {"weight_map", weight_map}});
  }
  return static_cast<int>(shards.size());
}

}  // namespace

std::filesystem::path resolve_checkpoint_file(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error)) return path;
  if (!std::filesystem::is_directory(path, error)) {
    throw UsageError("checkpoint " + path.string() +
                     " not found; pass a step_*.h5 file or a checkpoint directory");
  }
  const CheckpointDirectory directory(MPI_COMM_SELF, path, 1);
  const auto latest = directory.latest_valid();
  if (!latest) {
    throw UsageError(path.string() +
                     " holds no intact checkpoint (step_*.h5); pass the "
                     "checkpoint.dir of a run that saved one");
  }
  return latest->path;
}

ExportSummary export_hf_model(const ExportOptions& options) {
  ExportSummary summary;
  check_output_directory(options.output_dir);
  summary.checkpoint_file = resolve_checkpoint_file(options.checkpoint);
  const nlohmann::json metadata = read_checkpoint_metadata(MPI_COMM_SELF, summary.checkpoint_file);
  if (!metadata.contains("config") || !metadata["config"].is_string()) {
    throw UsageError(summary.checkpoint_file.string() +
                     " has no configuration in its metadata; is it a tessera checkpoint?");
  }
  const Config config = parse_config(metadata["config"].get<std::string>(), {});
  const HfArchitecture architecture = hf_architecture(config.model);
  const std::filesystem::path tokenizer =
      find_tokenizer(options, metadata, config, summary.tokenizer);
  if (!tokenizer.empty()) summary.tokenizer = tokenizer.string();
  const SpecialTokens tokens(metadata.value("special_tokens", nlohmann::json::object()));

  auto staging = options.output_dir;
  staging += ".partial";
  std::filesystem::remove_all(staging);
  std::filesystem::create_directories(staging);
  try {
    write_descriptions(staging, architecture, options.dtype, tokens, tokenizer,
                       config.model.seq_len);
    summary.shards =
        write_weights(staging, architecture, summary.checkpoint_file, options, summary.bytes);
  } catch (...) {  // a damaged tensor or a full disk: leave nothing half-written
    std::error_code ignored;
    std::filesystem::remove_all(staging, ignored);
    throw;
  }
  std::filesystem::remove(options.output_dir);  // empty, if it exists (checked above)
  std::filesystem::rename(staging, options.output_dir);
  summary.architecture = architecture.name;
  summary.tensors = static_cast<int64_t>(architecture.tensors.size());
  return summary;
}

}  // namespace tessera
