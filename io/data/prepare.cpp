#include "io/data/prepare.hpp"

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/data/sentencepiece_tokenizer.hpp"
#include "io/data/shard.hpp"
#include "io/data/tokenizer_spec.hpp"

namespace tessera {
namespace {

void check_options(const PrepareOptions& options) {
  if (options.inputs.empty()) throw UsageError("prepare needs at least one input text file");
  for (const auto& input : options.inputs) {
    if (!std::filesystem::is_regular_file(input)) {
      throw UsageError("input file " + input.string() + " does not exist; check the path");
    }
  }
  if (options.tokenizer != "byte" && options.tokenizer != "sentencepiece" &&
      !(tokenizer_kind(options.tokenizer) == "hf" &&
        !tokenizer_spec_file(options.tokenizer).empty())) {
    throw UsageError("unknown tokenizer '" + options.tokenizer +
                     "'; use byte, sentencepiece or hf:PATH/tokenizer.json");
  }
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0)) {
    throw UsageError("val_fraction " + std::to_string(options.val_fraction) +
                     " is outside [0, 1); use e.g. 0.1");
  }
  if (options.shard_tokens < 1) {
    throw UsageError("shard_tokens " + std::to_string(options.shard_tokens) + " must be >= 1");
  }
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read input file " + path.string() + "; check its permissions");
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

// A Hugging Face tokenizer is copied beside the shards, so that the dataset says how to read it.
std::unique_ptr<Tokenizer> make_tokenizer(const PrepareOptions& options) {
  if (options.tokenizer != "sentencepiece") {
    auto tokenizer = open_tokenizer(options.tokenizer);
    if (tokenizer_kind(options.tokenizer) == "hf") {
      std::filesystem::copy_file(std::string(tokenizer_spec_file(options.tokenizer)),
                                 options.output_dir / kHfTokenizerFile,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    return tokenizer;
  }
  SentencePieceTrainOptions train;
  train.inputs = options.inputs;
  train.output_dir = options.output_dir;
  train.model_type = options.sp_model_type;
  train.vocab_size = options.vocab_size;
  return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::train(train));
}

std::vector<int32_t> tokenize_inputs(const Tokenizer& tokenizer,
                                     const std::vector<std::filesystem::path>& inputs) {
  std::vector<int32_t> tokens;
  for (const auto& input : inputs) {
    const auto ids = tokenizer.encode(read_text(input));
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }
  return tokens;
}

double unigram_entropy(std::span<const int32_t> tokens, int vocab_size) {
  std::vector<int64_t> counts(static_cast<size_t>(vocab_size), 0);
  for (int32_t t : tokens) ++counts[static_cast<size_t>(t)];
  const auto total = static_cast<double>(tokens.size());
  double h = 0.0;
  for (int64_t c : counts) {
    if (c > 0) h -= static_cast<double>(c) / total * std::log(static_cast<double>(c) / total);
  }
  return h;
}

// Removes what an earlier prepare left, dataset.json first: until the new one is written, the
// directory is visibly unfinished.
void remove_previous_dataset(const std::filesystem::path& dir) {
  std::filesystem::remove(dir / kDatasetJson);
  std::filesystem::remove(dir / "tokenizer.model");
  std::filesystem::remove(dir / "tokenizer.vocab");
  std::filesystem::remove(dir / kHfTokenizerFile);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool shard = (name.starts_with("train_") || name.starts_with("val_")) &&
                       entry.path().extension() == ".bin";
    if (shard && entry.is_regular_file()) std::filesystem::remove(entry.path());
  }
}

std::string shard_name(const std::string& prefix, size_t index) {
  std::string digits = std::to_string(index);
  return prefix + "_" + std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0') + digits +
         ".bin";
}

nlohmann::json write_split(const std::filesystem::path& dir, const std::string& prefix,
                           std::span<const int32_t> tokens, const PrepareOptions& options,
                           const Tokenizer& tokenizer) {
  nlohmann::json shards = nlohmann::json::array();
  const auto per_shard = static_cast<size_t>(options.shard_tokens);
  for (size_t first = 0, index = 0; first < tokens.size(); first += per_shard, ++index) {
    const auto piece = tokens.subspan(first, std::min(per_shard, tokens.size() - first));
    const ShardSummary summary =
        write_shard(dir / shard_name(prefix, index), piece, tokenizer.id(), tokenizer.vocab_size());
    shards.push_back({{"file", summary.path.filename().string()},
                      {"tokens", summary.tokens},
                      {"bytes", summary.bytes},
                      {"fnv1a64", to_hex16(summary.payload_checksum)}});
  }
  return {{"tokens", tokens.size()}, {"shards", shards}};
}

void write_json(const std::filesystem::path& path, const nlohmann::json& json) {
  auto temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary);
    out << json.dump(2) << '\n';
    if (!out)
      throw UsageError("cannot write " + temporary.string() + "; check the output directory");
  }
  std::filesystem::rename(temporary, path);
}

/// The output directory, made if needed: a path the user gave, so a failure is theirs to fix.
void make_output_directory(const std::filesystem::path& dir) {
  std::error_code error;
  if (std::filesystem::exists(dir, error) && !std::filesystem::is_directory(dir, error)) {
    throw UsageError("--output " + dir.string() +
                     " is a file, not a directory; name a new or existing directory");
  }
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw UsageError("--output " + dir.string() + " cannot be made a directory (" +
                     error.message() + "); name a directory you can write");
  }
}

}  // namespace

void prepare_dataset(const PrepareOptions& options) {
  check_options(options);
  make_output_directory(options.output_dir);
  remove_previous_dataset(options.output_dir);

  const auto tokenizer = make_tokenizer(options);
  const std::vector<int32_t> tokens = tokenize_inputs(*tokenizer, options.inputs);
  const auto n_val =
      static_cast<size_t>(std::floor(static_cast<double>(tokens.size()) * options.val_fraction));
  const size_t n_train = tokens.size() - n_val;
  if (n_train == 0) {
    throw UsageError("the inputs give no training tokens (" + std::to_string(tokens.size()) +
                     " tokens in all); give more text or lower val_fraction");
  }
  const std::span<const int32_t> all(tokens);

  nlohmann::json dataset;
  dataset["format"] = "tessera-dataset";
  dataset["version"] = 1;
  dataset["tokenizer"] = {{"id", tokenizer->id()}, {"vocab_size", tokenizer->vocab_size()}};
  if (options.tokenizer == "sentencepiece") {
    dataset["tokenizer"]["model"] = "tokenizer.model";
    dataset["tokenizer"]["model_type"] = options.sp_model_type;
  }
  if (tokenizer_kind(options.tokenizer) == "hf") dataset["tokenizer"]["file"] = kHfTokenizerFile;
  dataset["tokenizer"]["special_tokens"] = tokenizer->special_tokens();
  dataset["inputs"] = nlohmann::json::array();
  for (const auto& input : options.inputs) dataset["inputs"].push_back(input.string());
  dataset["val_fraction"] = options.val_fraction;
  dataset["unigram_entropy"] = unigram_entropy(all.first(n_train), tokenizer->vocab_size());
  dataset["splits"]["train"] =
      write_split(options.output_dir, "train", all.first(n_train), options, *tokenizer);
  dataset["splits"]["validation"] =
      write_split(options.output_dir, "val", all.subspan(n_train), options, *tokenizer);
  write_json(options.output_dir / kDatasetJson, dataset);
}

}  // namespace tessera
