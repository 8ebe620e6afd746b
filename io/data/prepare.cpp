#include "io/data/prepare.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "core/json_file.hpp"
#include "io/data/corpus/documents.hpp"
#include "io/data/sentencepiece_tokenizer.hpp"
#include "io/data/shard.hpp"
#include "io/data/token_stream.hpp"
#include "io/data/tokenizer_spec.hpp"

namespace tessera {
namespace {

constexpr int kPlanVersion = 1;
constexpr const char* kPlanFile = "plan.json";
constexpr const char* kSentencePieceModel = "tokenizer.model";
constexpr const char* kSentencePieceVocab = "tokenizer.vocab";

std::filesystem::path work_directory(const PrepareOptions& options) {
  return options.output_dir / ".prepare";
}

std::filesystem::path chunk_path(const PrepareOptions& options, int64_t chunk) {
  return work_directory(options) / fmt::format("chunk_{:06}.bin", chunk);
}

std::vector<std::filesystem::path> input_files(const PrepareOptions& options) {
  return expand_inputs(options.inputs, options.input_list);
}

// Left to itself, a chunk is 1/256 of the input (between 1 and 64 MiB): enough chunks for the
// ranks to share evenly, few enough files for a large corpus. Input sizes alone decide it, so
// the chunks of a stopped run stay valid at any number of ranks.
uint64_t chunk_bytes(const PrepareOptions& options,
                     const std::vector<std::filesystem::path>& files) {
  if (options.chunk_bytes > 0) return options.chunk_bytes;
  uint64_t input_bytes = 0;
  for (const auto& file : files) input_bytes += std::filesystem::file_size(file);
  return std::clamp(input_bytes / 256, uint64_t{1} << 20, uint64_t{64} << 20);
}

void check_options(const PrepareOptions& options, const std::vector<std::filesystem::path>& files) {
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
  if (options.tokenizer == "sentencepiece") {
    for (const auto& file : files) {
      if (is_json_lines(file) || ByteStream(file).compression() != Compression::none) {
        throw UsageError("sentencepiece is trained from plain-text files, and " + file.string() +
                         " is JSON Lines or compressed; train on plain text, or use a "
                         "ready tokenizer with --tokenizer hf:PATH/tokenizer.json");
      }
    }
  }
}

// What the chunks of a run depend on: when an earlier run's plan is the same, its chunks are
// this run's too. Files are known by path, size and modification time.
nlohmann::json make_plan(const PrepareOptions& options,
                         const std::vector<std::filesystem::path>& files) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& file : files) {
    const auto modified = std::filesystem::last_write_time(file).time_since_epoch();
    inputs.push_back({{"path", std::filesystem::absolute(file).string()},
                      {"bytes", std::filesystem::file_size(file)},
                      {"modified_ns", std::chrono::nanoseconds(modified).count()}});
  }
  nlohmann::json tokenizer = {{"spec", options.tokenizer}};
  if (options.tokenizer == "sentencepiece") {
    tokenizer["vocab_size"] = options.vocab_size;
    tokenizer["model_type"] = options.sp_model_type;
  } else {
    tokenizer["id"] = open_tokenizer(options.tokenizer)->id();  // loads it: errors come now
  }
  return {{"version", kPlanVersion},
          {"tokenizer", tokenizer},
          {"text_key", options.text_key},
          {"chunk_bytes", chunk_bytes(options, files)},
          {"inputs", inputs}};
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

int64_t count_chunk_files(const PrepareOptions& options) {
  int64_t kept = 0;
  for (const auto& entry : std::filesystem::directory_iterator(work_directory(options))) {
    const std::string name = entry.path().filename().string();
    kept += name.starts_with("chunk_") && name.ends_with(".bin");
  }
  return kept;
}

/// Encodes documents into one chunk's tokens; writes the chunk file when the chunk closes.
class ChunkEncoder {
 public:
  ChunkEncoder(const PrepareOptions& options, const Tokenizer& tokenizer)
      : options_(options), tokenizer_(tokenizer) {}

  void add(const std::string& text, PrepareProgress& progress) {
    const std::vector<int32_t> ids = tokenizer_.encode(text);
    tokens_.insert(tokens_.end(), ids.begin(), ids.end());
    progress.text_bytes += text.size();
    progress.tokens += ids.size();
  }
  void write(int64_t chunk) {
    write_shard(chunk_path(options_, chunk), tokens_, tokenizer_.id(), tokenizer_.vocab_size());
    tokens_.clear();
  }

 private:
  const PrepareOptions& options_;
  const Tokenizer& tokenizer_;
  std::vector<int32_t> tokens_;
};

// Removes what an earlier prepare left, dataset.json first: until the new one is written, the
// directory is visibly unfinished.
void remove_previous_dataset(const std::filesystem::path& dir) {
  std::filesystem::remove(dir / kDatasetJson);
  std::filesystem::remove(dir / kSentencePieceModel);
  std::filesystem::remove(dir / kSentencePieceVocab);
  std::filesystem::remove(dir / kHfTokenizerFile);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool shard = (name.starts_with("train_") || name.starts_with("val_")) &&
                       entry.path().extension() == ".bin";
    if (shard && entry.is_regular_file()) std::filesystem::remove(entry.path());
  }
}

/// One shard of a split: tokens [first, first + count) of the chunk stream, as PREFIX_INDEX.bin.
struct PlannedShard {
  std::string file;
  uint64_t first = 0;
  uint64_t count = 0;
  bool train = false;
};

/// The shards of both splits, train first, cut from a stream of `total` tokens. The same on
/// every rank, so rank r writes shards r, r + ranks, ... without asking anyone.
std::vector<PlannedShard> plan_shards(uint64_t total, const PrepareOptions& options) {
  const auto n_val =
      static_cast<uint64_t>(std::floor(static_cast<double>(total) * options.val_fraction));
  const uint64_t n_train = total - n_val;
  if (n_train == 0) {
    throw UsageError("the inputs give no training tokens (" + std::to_string(total) +
                     " tokens in all); give more text or lower val_fraction");
  }
  std::vector<PlannedShard> shards;
  const auto per_shard = static_cast<uint64_t>(options.shard_tokens);
  auto cut = [&](const char* prefix, uint64_t first, uint64_t count, bool train) {
    for (uint64_t done = 0, index = 0; done < count; done += per_shard, ++index) {
      shards.push_back({fmt::format("{}_{:06}.bin", prefix, index), first + done,
                        std::min(per_shard, count - done), train});
    }
  };
  cut("train", 0, n_train, true);
  cut("val", n_train, n_val, false);
  return shards;
}

/// Chunks this run may build on must be whole and of this tokenizer; a bad one is removed so
/// that the next run encodes it again.
void check_chunk(const std::filesystem::path& path, const Tokenizer& tokenizer) {
  bool whole = false;
  try {
    const ShardReader reader(path);
    whole = reader.tokenizer_id() == tokenizer.id() && reader.verify_payload();
  } catch (const UsageError&) {  // truncated or not a shard: removed like a damaged one
  }
  if (!whole) {
    std::filesystem::remove(path);
    throw UsageError(path.string() +
                     " was damaged or written with another tokenizer and was "
                     "removed; run tessera prepare again to encode it anew");
  }
}

double entropy_of(const std::vector<double>& counts) {
  double total = 0;
  for (double c : counts) total += c;
  double h = 0.0;
  for (double c : counts) {
    if (c == 0) continue;
    const double p = c / total;
    h -= p * std::log(p);
  }
  return h;
}

/// The chunk files of step 2 as one stream (their headers read, their tokens mapped).
TokenStream open_chunks(const PrepareOptions& options, int64_t chunks) {
  std::vector<ShardReader> readers;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const auto path = chunk_path(options, chunk);
    if (!std::filesystem::exists(path)) {
      throw UsageError(path.string() +
                       " is missing: a rank did not finish its chunks; run "
                       "tessera prepare again to encode what is missing");
    }
    readers.emplace_back(path);
  }
  return TokenStream(std::move(readers));
}

}  // namespace

int64_t begin_prepare(const PrepareOptions& options) {
  const std::vector<std::filesystem::path> files = input_files(options);
  check_options(options, files);
  make_output_directory(options.output_dir);
  const nlohmann::json plan = make_plan(options, files);
  const auto work = work_directory(options);
  const std::optional<nlohmann::json> earlier = read_json_file(work / kPlanFile);
  if (!earlier || *earlier != plan) {
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    write_json_file(work / kPlanFile, plan);
  }
  if (options.tokenizer == "sentencepiece" &&
      !std::filesystem::exists(work / kSentencePieceModel)) {
    SentencePieceTrainOptions train;
    train.inputs = files;
    train.output_dir = work;
    train.model_type = options.sp_model_type;
    train.vocab_size = options.vocab_size;
    SentencePieceTokenizer::train(train);
  }
  return count_chunk_files(options);
}

std::unique_ptr<Tokenizer> open_prepare_tokenizer(const PrepareOptions& options) {
  if (options.tokenizer == "sentencepiece") {
    return std::make_unique<SentencePieceTokenizer>(
        SentencePieceTokenizer::load(work_directory(options) / kSentencePieceModel));
  }
  return open_tokenizer(options.tokenizer);
}

int64_t tokenize_chunks(const PrepareOptions& options, const Tokenizer& tokenizer, int rank,
                        int ranks, const PrepareProgressSink& progress_sink) {
  const std::vector<std::filesystem::path> files = input_files(options);
  PrepareProgress progress;
  for (const auto& file : files) progress.input_bytes += std::filesystem::file_size(file);
  ChunkEncoder encoder(options, tokenizer);
  int64_t chunk = 0;
  uint64_t chunk_raw_bytes = 0, files_done_bytes = 0;
  bool chunk_open = false;
  const uint64_t bytes_per_chunk = chunk_bytes(options, files);
  auto owned = [&] { return chunk % ranks == rank; };
  auto already_done = [&] { return std::filesystem::exists(chunk_path(options, chunk)); };
  bool encode = owned() && !already_done();
  progress.chunks_kept += owned() && !encode;
  auto last_report = std::chrono::steady_clock::now();
  std::string raw;
  for (const auto& file : files) {
    DocumentReader documents(file, options.text_key);
    while (documents.next(raw)) {
      if (encode) encoder.add(documents.text(raw), progress);
      chunk_open = true;
      chunk_raw_bytes += raw.size();
      if (chunk_raw_bytes >= bytes_per_chunk) {
        if (encode) {
          encoder.write(chunk);
          ++progress.chunks_encoded;
        }
        ++chunk;
        chunk_raw_bytes = 0;
        chunk_open = false;
        encode = owned() && !already_done();
        progress.chunks_kept += owned() && !encode;
      }
      progress.input_bytes_read = files_done_bytes + documents.file_bytes_read();
      const auto now = std::chrono::steady_clock::now();
      if (progress_sink && now - last_report > std::chrono::milliseconds(500)) {
        progress_sink(progress);
        last_report = now;
      }
    }
    files_done_bytes += std::filesystem::file_size(file);
  }
  if (chunk_open) {
    if (encode) {
      encoder.write(chunk);
      ++progress.chunks_encoded;
    }
    ++chunk;
  }
  progress.input_bytes_read = progress.input_bytes;
  if (progress_sink) progress_sink(progress);
  return chunk;
}

std::vector<double> write_shards(const PrepareOptions& options, const Tokenizer& tokenizer,
                                 int64_t chunks, int rank, int ranks) {
  for (int64_t chunk = rank; chunk < chunks; chunk += ranks) {
    if (std::filesystem::exists(chunk_path(options, chunk))) {
      check_chunk(chunk_path(options, chunk), tokenizer);
    }
  }
  const TokenStream stream = open_chunks(options, chunks);
  const std::vector<PlannedShard> shards = plan_shards(stream.size(), options);
  std::vector<double> train_counts(static_cast<size_t>(tokenizer.vocab_size()), 0.0);
  std::vector<int32_t> tokens;
  for (size_t index = static_cast<size_t>(rank); index < shards.size(); index += ranks) {
    const PlannedShard& shard = shards[index];
    tokens.resize(shard.count);
    stream.read(shard.first, shard.count, tokens.data());
    if (shard.train) {
      for (int32_t id : tokens) train_counts[static_cast<size_t>(id)] += 1.0;
    }
    write_shard(work_directory(options) / shard.file, tokens, tokenizer.id(),
                tokenizer.vocab_size());
  }
  return train_counts;
}

void finish_prepare(const PrepareOptions& options, const Tokenizer& tokenizer, int64_t chunks,
                    const std::vector<double>& train_counts) {
  const std::vector<PlannedShard> shards =
      plan_shards(open_chunks(options, chunks).size(), options);
  const auto& dir = options.output_dir;
  const auto work = work_directory(options);
  remove_previous_dataset(dir);
  nlohmann::json dataset;
  dataset["format"] = "tessera-dataset";
  dataset["version"] = 1;
  dataset["tokenizer"] = {{"id", tokenizer.id()}, {"vocab_size", tokenizer.vocab_size()}};
  if (options.tokenizer == "sentencepiece") {
    std::filesystem::rename(work / kSentencePieceModel, dir / kSentencePieceModel);
    std::filesystem::rename(work / kSentencePieceVocab, dir / kSentencePieceVocab);
    dataset["tokenizer"]["model"] = kSentencePieceModel;
    dataset["tokenizer"]["model_type"] = options.sp_model_type;
  }
  if (tokenizer_kind(options.tokenizer) == "hf") {
    std::filesystem::copy_file(std::string(tokenizer_spec_file(options.tokenizer)),
                               dir / kHfTokenizerFile,
                               std::filesystem::copy_options::overwrite_existing);
    dataset["tokenizer"]["file"] = kHfTokenizerFile;
  }
  dataset["tokenizer"]["special_tokens"] = tokenizer.special_tokens();
  dataset["inputs"] = nlohmann::json::array();
  for (const auto& input : input_files(options)) dataset["inputs"].push_back(input.string());
  dataset["text_key"] = options.text_key;
  dataset["val_fraction"] = options.val_fraction;
  for (const auto* split : {"train", "validation"}) {
    dataset["splits"][split] = {{"tokens", 0}, {"shards", nlohmann::json::array()}};
  }
  for (const PlannedShard& shard : shards) {
    std::filesystem::rename(work / shard.file, dir / shard.file);
    const ShardReader written(dir / shard.file);  // its header holds the checksum
    auto& split = dataset["splits"][shard.train ? "train" : "validation"];
    split["tokens"] = split["tokens"].get<uint64_t>() + written.size();
    split["shards"].push_back({{"file", shard.file},
                               {"tokens", written.size()},
                               {"bytes", std::filesystem::file_size(dir / shard.file)},
                               {"fnv1a64", to_hex16(written.payload_checksum())}});
  }
  dataset["unigram_entropy"] = entropy_of(train_counts);
  write_json_file(dir / kDatasetJson, dataset);
  std::filesystem::remove_all(work);
}

void prepare_dataset(const PrepareOptions& options, const PrepareProgressSink& progress) {
  begin_prepare(options);
  const std::unique_ptr<Tokenizer> tokenizer = open_prepare_tokenizer(options);
  const int64_t chunks = tokenize_chunks(options, *tokenizer, 0, 1, progress);
  finish_prepare(options, *tokenizer, chunks, write_shards(options, *tokenizer, chunks, 0, 1));
}

}  // namespace tessera
