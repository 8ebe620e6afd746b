#include "io/data/data_loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/json_numbers.hpp"
#include "io/data/hf/hf_tokenizer.hpp"
#include "io/data/prepare.hpp"
#include "io/data/sample_order.hpp"
#include "io/data/shard.hpp"
#include "io/data/source_blend.hpp"
#include "io/data/synthetic.hpp"
#include "io/data/token_stream.hpp"
#include "io/data/tokenizer.hpp"
#include "io/data/tokenizer_spec.hpp"

namespace tessera {

/// What DataLoader reads from: one implementation per kind of data.source.
/// A shard and how the manifest and messages name it (its file, or SOURCE/file in a mix).
struct NamedShard {
  std::string split;
  std::string name;
  const ShardReader* reader;
};

class DataSource {
 public:
  virtual ~DataSource() = default;
  virtual void read_window(Split split, int64_t sample, int seq_len, int32_t* inputs,
                           int32_t* targets) const = 0;
  virtual double loss_floor(int seq_len) const = 0;
  virtual double unigram_entropy() const = 0;
  virtual int vocab_size() const = 0;
  virtual std::optional<int64_t> samples_per_epoch(Split split) const = 0;
  virtual std::string describe() const = 0;
  virtual std::string tokenizer_id() const = 0;
  virtual std::map<std::string, int32_t> special_tokens() const { return {}; }
  /// The shards read from (none for generated data).
  virtual std::vector<NamedShard> shards() const { return {}; }
  /// Samples and tokens each source gives in the first `samples` training samples.
  virtual std::vector<SourceDraw> drawn(uint64_t samples, int seq_len) const {
    return {{describe_name(), 1.0, samples, samples * static_cast<uint64_t>(seq_len)}};
  }
  virtual std::string describe_name() const { return "synthetic"; }
};

namespace {

std::string format_nats(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", value);
  return text;
}

class SyntheticSource final : public DataSource {
 public:
  explicit SyntheticSource(const MarkovSourceOptions& options)
      : chain_(options), options_(options) {}

  void read_window(Split split, int64_t sample, int seq_len, int32_t* inputs,
                   int32_t* targets) const override {
    chain_.generate_window(split, sample, seq_len, inputs, targets);
  }
  double loss_floor(int seq_len) const override { return chain_.expected_loss_floor(seq_len); }
  double unigram_entropy() const override { return chain_.stationary_entropy(); }
  int vocab_size() const override { return chain_.n_states(); }
  std::optional<int64_t> samples_per_epoch(Split) const override { return std::nullopt; }
  std::string tokenizer_id() const override {
    return "synthetic-markov:seed=" + std::to_string(chain_.seed());
  }
  std::string describe() const override {
    return "synthetic Markov source: " + std::to_string(chain_.n_states()) + " states, " +
           std::to_string(options_.min_successors) + "-" + std::to_string(options_.max_successors) +
           " successors each, seed " + std::to_string(chain_.seed()) +
           "; loss floor (entropy rate) " + format_nats(chain_.entropy_rate()) +
           " nats/token, unigram entropy " + format_nats(chain_.stationary_entropy()) + " nats";
  }

 private:
  MarkovSource chain_;
  MarkovSourceOptions options_;
};

struct DatasetDescription {
  std::string tokenizer_id;
  int vocab_size = 0;
  std::map<std::string, int32_t> special_tokens;  // absent from datasets of older versions
  double unigram_entropy = 0.0;
  std::vector<ShardReader> train, validation;
};

std::string rerun_hint() { return "; re-run `tessera prepare` to rewrite the dataset"; }

nlohmann::json read_dataset_json(const std::filesystem::path& dir) {
  const auto path = dir / kDatasetJson;
  if (!std::filesystem::is_regular_file(path)) {
    throw UsageError("data.source " + dir.string() + " has no " + kDatasetJson +
                     ": it was not written by `tessera prepare`, or prepare did not finish" +
                     rerun_hint());
  }
  std::ifstream in(path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(path.string() + " is not valid JSON (" + e.what() + ")" + rerun_hint());
  }
}

/// `value` as a whole number in [lo, hi] (whole_number_in); bad input otherwise.
int64_t whole_number(const nlohmann::json& value, const std::string& key, int64_t lo, int64_t hi) {
  if (const std::optional<int64_t> number = whole_number_in(value, lo, hi)) return *number;
  throw UsageError(std::string(kDatasetJson) + ": \"" + key + "\" = " + value.dump(-1) +
                   " is not a whole number from " + std::to_string(lo) + " to " +
                   std::to_string(hi) + rerun_hint());
}

std::vector<ShardReader> open_split(const std::filesystem::path& dir, const nlohmann::json& split,
                                    const DatasetDescription& dataset) {
  std::vector<ShardReader> shards;
  for (const auto& entry : split.at("shards")) {
    const auto path = dir / entry.at("file").get<std::string>();
    if (!std::filesystem::exists(path)) {
      throw UsageError("shard " + path.string() + " listed in " + kDatasetJson + " is missing" +
                       rerun_hint());
    }
    ShardReader shard(path);
    const auto tokens = static_cast<uint64_t>(
        whole_number(entry.at("tokens"), "tokens", 0, std::numeric_limits<int64_t>::max()));
    if (shard.size() != tokens || shard.tokenizer_id() != dataset.tokenizer_id ||
        shard.vocab_size() != dataset.vocab_size) {
      throw UsageError("shard " + path.string() + " does not match " + kDatasetJson +
                       " (token count, tokenizer or vocabulary differ)" + rerun_hint());
    }
    shards.push_back(std::move(shard));
  }
  return shards;
}

DatasetDescription open_dataset(const std::filesystem::path& dir) {
  const nlohmann::json json = read_dataset_json(dir);
  DatasetDescription dataset;
  try {
    dataset.tokenizer_id = json.at("tokenizer").at("id").get<std::string>();
    const nlohmann::json& tokenizer = json.at("tokenizer");
    dataset.vocab_size = static_cast<int>(whole_number(tokenizer.at("vocab_size"), "vocab_size", 1,
                                                       std::numeric_limits<int32_t>::max()));
    if (const auto special = tokenizer.find("special_tokens"); special != tokenizer.end()) {
      for (const auto& [name, id] : special->items()) {
        dataset.special_tokens[name] = static_cast<int32_t>(
            whole_number(id, "special_tokens." + name, 0, std::numeric_limits<int32_t>::max()));
      }
    }
    dataset.unigram_entropy = json.at("unigram_entropy").get<double>();
    dataset.train = open_split(dir, json.at("splits").at("train"), dataset);
    dataset.validation = open_split(dir, json.at("splits").at("validation"), dataset);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError((dir / kDatasetJson).string() + " is malformed (" + e.what() + ")" +
                     rerun_hint());
  }
  return dataset;
}

uint64_t count_windows(const TokenStream& tokens, int seq_len) {
  return tokens.size() == 0 ? 0 : (tokens.size() - 1) / static_cast<uint64_t>(seq_len);
}

class PreparedSource final : public DataSource {
 public:
  PreparedSource(std::filesystem::path dir, DatasetDescription dataset, int seq_len, uint64_t seed)
      : dir_(std::move(dir)),
        tokenizer_id_(dataset.tokenizer_id),
        vocab_size_(dataset.vocab_size),
        special_tokens_(std::move(dataset.special_tokens)),
        unigram_entropy_(dataset.unigram_entropy),
        train_(std::move(dataset.train)),
        validation_(std::move(dataset.validation)),
        train_windows_(count_windows(train_, seq_len)),
        validation_windows_(count_windows(validation_, seq_len)),
        order_(std::max<uint64_t>(train_windows_, 1), seed) {
    if (train_windows_ == 0) {
      throw UsageError("data.source " + dir_.string() + " has " + std::to_string(train_.size()) +
                       " training tokens, fewer than one window of model.seq_len + 1 = " +
                       std::to_string(seq_len + 1) + "; prepare more text or lower model.seq_len");
    }
  }

  void read_window(Split split, int64_t sample, int seq_len, int32_t* inputs,
                   int32_t* targets) const override {
    const auto g = static_cast<uint64_t>(sample);
    const bool train = split == Split::train;
    if (!train && validation_windows_ == 0) {
      throw UsageError("data.source " + dir_.string() + " has no validation window of " +
                       std::to_string(seq_len + 1) + " tokens (" +
                       std::to_string(validation_.size()) +
                       " validation tokens); re-run `tessera prepare` with a larger val_fraction "
                       "or set eval.every=0");
    }
    const uint64_t window = train ? order_.window(g) : g % validation_windows_;
    const TokenStream& tokens = train ? train_ : validation_;
    const uint64_t first = window * static_cast<uint64_t>(seq_len);
    tokens.read(first, static_cast<uint64_t>(seq_len), inputs);
    tokens.read(first + 1, static_cast<uint64_t>(seq_len), targets);
  }
  double loss_floor(int) const override { return std::numeric_limits<double>::quiet_NaN(); }
  double unigram_entropy() const override { return unigram_entropy_; }
  int vocab_size() const override { return vocab_size_; }
  std::optional<int64_t> samples_per_epoch(Split split) const override {
    return static_cast<int64_t>(split == Split::train ? train_windows_ : validation_windows_);
  }
  std::string tokenizer_id() const override { return tokenizer_id_; }
  std::map<std::string, int32_t> special_tokens() const override { return special_tokens_; }
  std::vector<NamedShard> shards() const override {
    std::vector<NamedShard> all;
    for (const ShardReader& shard : train_.shards()) {
      all.push_back({"train", shard.path().filename().string(), &shard});
    }
    for (const ShardReader& shard : validation_.shards()) {
      all.push_back({"validation", shard.path().filename().string(), &shard});
    }
    return all;
  }
  std::string describe_name() const override { return dir_.string(); }
  uint64_t train_tokens() const { return train_.size(); }
  std::string describe() const override {
    return "prepared dataset " + dir_.string() + ": tokenizer " + tokenizer_id_ + " (vocab " +
           std::to_string(vocab_size_) + "), train " + std::to_string(train_.size()) +
           " tokens in " + std::to_string(train_.n_shards()) +
           " shards = " + std::to_string(train_windows_) + " windows, validation " +
           std::to_string(validation_.size()) + " tokens = " + std::to_string(validation_windows_) +
           " windows; unigram entropy " + format_nats(unigram_entropy_) + " nats";
  }

 private:
  std::filesystem::path dir_;
  std::string tokenizer_id_;
  int vocab_size_;
  std::map<std::string, int32_t> special_tokens_;
  double unigram_entropy_;
  TokenStream train_, validation_;
  uint64_t train_windows_, validation_windows_;
  SampleOrder order_;
};

// data.tokenizer names the kind the data was prepared with; "hf:PATH" also names the file, which
// must be the one the dataset was tokenized with (the same bytes).
void check_tokenizer(const DataConfig& data, const DatasetDescription& dataset,
                     const std::filesystem::path& dir) {
  const std::string prepared_kind = tokenizer_kind(dataset.tokenizer_id);
  if (tokenizer_kind(data.tokenizer) != prepared_kind) {
    throw UsageError("data.source " + dir.string() + " was prepared with tokenizer '" +
                     dataset.tokenizer_id + "' but data.tokenizer is '" + data.tokenizer +
                     "'; set data.tokenizer=" + prepared_kind +
                     " or prepare the data again with the tokenizer you want");
  }
  const std::string_view file = tokenizer_spec_file(data.tokenizer);
  if (prepared_kind == "hf" && !file.empty()) {
    const std::string named_id = hf_tokenizer_id(std::string(file));
    if (named_id != dataset.tokenizer_id) {
      throw UsageError("data.tokenizer " + data.tokenizer + " (" + named_id + ") is not the " +
                       "tokenizer data.source " + dir.string() + " was prepared with (" +
                       dataset.tokenizer_id + ", kept there as " + kHfTokenizerFile +
                       "); name that file, set data.tokenizer=hf, or prepare the data again");
    }
  }
}

std::shared_ptr<const PreparedSource> open_prepared(const std::filesystem::path& dir,
                                                    const DataConfig& data,
                                                    const ModelConfig& model, uint64_t seed) {
  if (!std::filesystem::is_directory(dir)) {
    throw UsageError("data.source '" + dir.string() +
                     "' is neither \"synthetic\" nor an existing directory; run `tessera prepare` "
                     "to create it or set data.source=synthetic");
  }
  DatasetDescription dataset = open_dataset(dir);
  check_tokenizer(data, dataset, dir);
  if (dataset.vocab_size > model.vocab_size) {
    throw UsageError("data.source " + dir.string() + " has a vocabulary of " +
                     std::to_string(dataset.vocab_size) + " tokens but model.vocab_size is " +
                     std::to_string(model.vocab_size) +
                     "; set model.vocab_size >= " + std::to_string(dataset.vocab_size));
  }
  return std::make_shared<const PreparedSource>(dir, std::move(dataset), model.seq_len, seed);
}

/// data.sources: samples drawn from several prepared datasets by weight (SourceBlend); each
/// source visits its own windows in its own order, as it would alone.
class MixedSource final : public DataSource {
 public:
  MixedSource(std::vector<std::shared_ptr<const PreparedSource>> sources,
              const std::vector<double>& weights, uint64_t seed)
      : sources_(std::move(sources)), blend_(weights, seed) {
    for (const auto& source : sources_) {
      if (source->tokenizer_id() != sources_.front()->tokenizer_id()) {
        throw UsageError("data.sources " + sources_.front()->describe_name() + " and " +
                         source->describe_name() + " were prepared with different tokenizers (" +
                         sources_.front()->tokenizer_id() + ", " + source->tokenizer_id() +
                         "); prepare every source with the same tokenizer");
      }
    }
  }

  void read_window(Split split, int64_t sample, int seq_len, int32_t* inputs,
                   int32_t* targets) const override {
    const SourceBlend::Draw draw = blend_.draw(static_cast<uint64_t>(sample));
    sources_[draw.source]->read_window(split, static_cast<int64_t>(draw.index), seq_len, inputs,
                                       targets);
  }
  double loss_floor(int) const override { return std::numeric_limits<double>::quiet_NaN(); }
  /// The weighted mean of the sources' unigram entropies: a lower bound of the mix's own.
  double unigram_entropy() const override {
    double entropy = 0;
    for (size_t s = 0; s < sources_.size(); ++s) {
      entropy += blend_.weights()[s] * sources_[s]->unigram_entropy();
    }
    return entropy;
  }
  int vocab_size() const override { return sources_.front()->vocab_size(); }
  std::optional<int64_t> samples_per_epoch(Split split) const override {
    int64_t total = 0;
    for (const auto& source : sources_) total += source->samples_per_epoch(split).value_or(0);
    return total;
  }
  std::string tokenizer_id() const override { return sources_.front()->tokenizer_id(); }
  std::map<std::string, int32_t> special_tokens() const override {
    return sources_.front()->special_tokens();
  }
  std::vector<NamedShard> shards() const override {
    std::vector<NamedShard> all;
    for (const auto& source : sources_) {
      for (NamedShard shard : source->shards()) {
        shard.name = source->describe_name() + "/" + shard.name;
        all.push_back(std::move(shard));
      }
    }
    return all;
  }
  std::vector<SourceDraw> drawn(uint64_t samples, int seq_len) const override {
    const std::vector<uint64_t> counts = blend_.counts(samples);
    std::vector<SourceDraw> draws;
    for (size_t s = 0; s < sources_.size(); ++s) {
      draws.push_back({sources_[s]->describe_name(), blend_.weights()[s], counts[s],
                       counts[s] * static_cast<uint64_t>(seq_len)});
    }
    return draws;
  }
  std::string describe_name() const override { return "mix"; }
  std::string describe() const override {
    std::string text = "mix of " + std::to_string(sources_.size()) + " prepared datasets:";
    for (size_t s = 0; s < sources_.size(); ++s) {
      text += fmt::format(" [{:.1f}%] {};", 100 * blend_.weights()[s], sources_[s]->describe());
    }
    text.pop_back();
    return text;
  }

 private:
  std::vector<std::shared_ptr<const PreparedSource>> sources_;
  SourceBlend blend_;
};

std::shared_ptr<const DataSource> open_mixed(const DataConfig& data, const ModelConfig& model) {
  std::vector<std::shared_ptr<const PreparedSource>> sources;
  std::vector<double> weights;
  const std::vector<DataSourceSpec> specs = data_sources(data);
  for (size_t s = 0; s < specs.size(); ++s) {
    // Each source its own sample order: the same seed would walk equal-sized sources in step.
    sources.push_back(open_prepared(specs[s].dir, data, model, data.seed + s));
    weights.push_back(std::isnan(specs[s].weight)
                          ? static_cast<double>(sources.back()->train_tokens())
                          : specs[s].weight);
  }
  return std::make_shared<const MixedSource>(std::move(sources), weights, data.seed);
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const DataSource> source, int seq_len)
    : source_(std::move(source)), seq_len_(seq_len) {}

DataLoader DataLoader::open(const DataConfig& data, const ModelConfig& model) {
  if (model.seq_len < 1) {
    throw UsageError("model.seq_len is " + std::to_string(model.seq_len) + "; it must be >= 1");
  }
  if (!data.sources.empty()) return DataLoader(open_mixed(data, model), model.seq_len);
  if (data.source == "synthetic") {
    MarkovSourceOptions options;
    options.n_states = std::min(model.vocab_size, 256);
    options.seed = data.seed;
    return DataLoader(std::make_shared<const SyntheticSource>(options), model.seq_len);
  }
  return DataLoader(open_prepared(data.source, data, model, data.seed), model.seq_len);
}

void DataLoader::read(Split split, int64_t first_sample, int count, int32_t* inputs,
                      int32_t* targets) const {
  TESSERA_CHECK(first_sample >= 0 && count >= 0,
                std::to_string(first_sample) + ", " + std::to_string(count));
  const auto row = static_cast<size_t>(seq_len_);
  for (int i = 0; i < count; ++i) {
    source_->read_window(split, first_sample + i, seq_len_, inputs + static_cast<size_t>(i) * row,
                         targets + static_cast<size_t>(i) * row);
  }
}

double DataLoader::loss_floor() const { return source_->loss_floor(seq_len_); }
double DataLoader::unigram_entropy() const { return source_->unigram_entropy(); }
std::string DataLoader::tokenizer_id() const { return source_->tokenizer_id(); }
std::map<std::string, int32_t> DataLoader::special_tokens() const {
  return source_->special_tokens();
}

std::string DataLoader::describe() const { return source_->describe(); }
int DataLoader::vocab_size() const { return source_->vocab_size(); }
std::optional<int64_t> DataLoader::samples_per_epoch(Split split) const {
  return source_->samples_per_epoch(split);
}

std::vector<ShardChecksum> DataLoader::shard_checksums() const {
  std::vector<ShardChecksum> checksums;
  for (const NamedShard& shard : source_->shards()) {
    checksums.push_back(
        {shard.split, shard.name, shard.reader->size(), shard.reader->payload_checksum()});
  }
  return checksums;
}

std::vector<SourceDraw> DataLoader::drawn(int64_t samples) const {
  return source_->drawn(static_cast<uint64_t>(samples), seq_len_);
}

namespace {

/// The shards of `all` with index % parts == part.
std::vector<const NamedShard*> share_of(const std::vector<NamedShard>& all, int part, int parts) {
  TESSERA_CHECK(parts >= 1 && part >= 0 && part < parts,
                "part " + std::to_string(part) + " of " + std::to_string(parts));
  std::vector<const NamedShard*> mine;
  for (std::size_t i = static_cast<std::size_t>(part); i < all.size();
       i += static_cast<std::size_t>(parts)) {
    mine.push_back(&all[i]);
  }
  return mine;
}

}  // namespace

std::vector<std::string> DataLoader::damaged_shards(int part, int parts, int threads) const {
  const std::vector<NamedShard> all = source_->shards();
  const std::vector<const NamedShard*> mine = share_of(all, part, parts);
  std::vector<char> bad(mine.size(), 0);
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < mine.size(); i = next++) {
      bad[i] = !mine[i]->reader->verify_payload();
    }
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < std::min<int>(threads, static_cast<int>(mine.size())); ++t)
    helpers.emplace_back(work);
  work();
  for (std::thread& helper : helpers) helper.join();
  std::vector<std::string> damaged;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (bad[i]) damaged.push_back(mine[i]->name);
  }
  return damaged;
}

uint64_t DataLoader::payload_bytes(int part, int parts) const {
  uint64_t bytes = 0;
  const std::vector<NamedShard> all = source_->shards();
  for (const NamedShard* shard : share_of(all, part, parts)) {
    bytes += shard->reader->size() * static_cast<uint64_t>(shard->reader->dtype());
  }
  return bytes;
}

}  // namespace tessera
