#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "data_test_util.hpp"
#include "io/data/data_loader.hpp"
#include "io/data/prepare.hpp"
#include "io/data/synthetic.hpp"
#include "io/data/tokenizer.hpp"

namespace tessera {
namespace {

using testing::generated_text;
using testing::TempDir;
using testing::usage_error_message;

struct Batch {
  std::vector<int32_t> inputs, targets;
};

Batch read(const DataLoader& loader, Split split, int64_t first, int count) {
  Batch batch;
  const size_t n = static_cast<size_t>(count) * static_cast<size_t>(loader.seq_len());
  batch.inputs.resize(n);
  batch.targets.resize(n);
  loader.read(split, first, count, batch.inputs.data(), batch.targets.data());
  return batch;
}

void expect_targets_are_shifted_inputs(const Batch& batch, int seq_len) {
  for (size_t row = 0; row < batch.inputs.size() / seq_len; ++row) {
    for (int t = 0; t + 1 < seq_len; ++t) {
      ASSERT_EQ(batch.targets[row * seq_len + t], batch.inputs[row * seq_len + t + 1]);
    }
  }
}

// Reading [0, 8) at once and as two "ranks" [0, 4) + [4, 8) gives the same tokens.
void expect_split_reads_agree(const DataLoader& loader, Split split) {
  const Batch whole = read(loader, split, 0, 8);
  const Batch first = read(loader, split, 0, 4), second = read(loader, split, 4, 4);
  std::vector<int32_t> inputs = first.inputs, targets = first.targets;
  inputs.insert(inputs.end(), second.inputs.begin(), second.inputs.end());
  targets.insert(targets.end(), second.targets.begin(), second.targets.end());
  EXPECT_EQ(inputs, whole.inputs);
  EXPECT_EQ(targets, whole.targets);
}

TEST(SyntheticLoader, ReadsTheMarkovSource) {
  DataConfig data;
  ModelConfig model;
  model.seq_len = 32;
  const DataLoader loader = DataLoader::open(data, model);
  const MarkovSource chain(MarkovSourceOptions{.n_states = 256, .seed = data.seed});
  EXPECT_DOUBLE_EQ(loader.loss_floor(), chain.entropy_rate());
  EXPECT_DOUBLE_EQ(loader.unigram_entropy(), chain.stationary_entropy());
  EXPECT_FALSE(loader.samples_per_epoch(Split::train).has_value());
  EXPECT_NE(loader.describe().find("synthetic"), std::string::npos);
  std::cout << "[ synthetic ] " << loader.describe() << "\n";

  const Batch batch = read(loader, Split::train, 10, 3);
  expect_targets_are_shifted_inputs(batch, 32);
  std::vector<int32_t> tokens(33);
  chain.generate(Split::train, 11, 33, tokens.data());
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.begin() + 32, batch.inputs.begin() + 32));
  EXPECT_EQ(tokens[32], batch.targets[2 * 32 - 1]);

  expect_split_reads_agree(loader, Split::train);
  expect_split_reads_agree(loader, Split::validation);
  EXPECT_NE(read(loader, Split::train, 0, 1).inputs, read(loader, Split::validation, 0, 1).inputs);
}

TEST(SyntheticLoader, UsesAtMostTheModelVocabulary) {
  DataConfig data;
  ModelConfig model;
  model.vocab_size = 50;
  const DataLoader loader = DataLoader::open(data, model);
  EXPECT_EQ(loader.vocab_size(), 50);
  for (int32_t t : read(loader, Split::train, 0, 16).inputs) ASSERT_TRUE(t >= 0 && t < 50);
}

struct PreparedDir {
  TempDir dir;
  std::string text = generated_text(120);
  DataConfig data;
  ModelConfig model;

  explicit PreparedDir(double val_fraction = 0.2) {
    testing::write_file(dir / "text.txt", text);
    PrepareOptions options;
    options.inputs = {dir / "text.txt"};
    options.output_dir = dir / "data";
    options.val_fraction = val_fraction;
    options.shard_tokens = 700;  // several shards, so windows cross shard boundaries
    prepare_dataset(options);
    data.source = (dir / "data").string();
    model.seq_len = 16;
  }
  size_t train_tokens() const { return text.size() - validation_tokens(); }
  size_t validation_tokens() const { return text.size() / 5; }
};

TEST(PreparedLoader, OneEpochVisitsEveryTrainingWindowOnce) {
  PreparedDir prepared;
  const DataLoader loader = DataLoader::open(prepared.data, prepared.model);
  const auto tokens = ByteTokenizer().encode(prepared.text);
  const int64_t windows = static_cast<int64_t>((prepared.train_tokens() - 1) / 16);
  ASSERT_EQ(loader.samples_per_epoch(Split::train), windows);
  EXPECT_TRUE(std::isnan(loader.loss_floor()));

  for (int epoch = 0; epoch < 2; ++epoch) {
    const Batch batch = read(loader, Split::train, epoch * windows, static_cast<int>(windows));
    std::set<size_t> seen;
    for (int64_t i = 0; i < windows; ++i) {
      const int32_t* inputs = batch.inputs.data() + i * 16;
      const int32_t* targets = batch.targets.data() + i * 16;
      // Locate the window by content: its first token index is a multiple of 16.
      size_t found = SIZE_MAX;
      for (size_t w = 0; w < static_cast<size_t>(windows) && found == SIZE_MAX; ++w) {
        if (std::equal(inputs, inputs + 16, tokens.begin() + w * 16) &&
            std::equal(targets, targets + 16, tokens.begin() + w * 16 + 1)) {
          found = w;
        }
      }
      ASSERT_NE(found, SIZE_MAX) << "sample " << i << " is not a training window";
      seen.insert(found);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(windows)) << "epoch " << epoch;
  }
  expect_split_reads_agree(loader, Split::train);
  expect_split_reads_agree(loader, Split::validation);
}

TEST(PreparedLoader, ValidationReadsHeldOutWindowsInOrder) {
  PreparedDir prepared;
  const DataLoader loader = DataLoader::open(prepared.data, prepared.model);
  const auto tokens = ByteTokenizer().encode(prepared.text);
  const size_t offset = prepared.train_tokens();
  const int64_t windows = static_cast<int64_t>((prepared.validation_tokens() - 1) / 16);
  ASSERT_EQ(loader.samples_per_epoch(Split::validation), windows);
  const Batch batch = read(loader, Split::validation, 0, static_cast<int>(windows + 2));
  for (int64_t g = 0; g < windows + 2; ++g) {
    const size_t first = offset + static_cast<size_t>(g % windows) * 16;
    EXPECT_TRUE(std::equal(tokens.begin() + first, tokens.begin() + first + 16,
                           batch.inputs.begin() + g * 16));
    EXPECT_TRUE(std::equal(tokens.begin() + first + 1, tokens.begin() + first + 17,
                           batch.targets.begin() + g * 16));
  }
}

TEST(PreparedLoader, OrderDependsOnTheSeedOnly) {
  PreparedDir prepared;
  const DataLoader a = DataLoader::open(prepared.data, prepared.model);
  const DataLoader b = DataLoader::open(prepared.data, prepared.model);
  EXPECT_EQ(read(a, Split::train, 0, 20).inputs, read(b, Split::train, 0, 20).inputs);
  prepared.data.seed += 1;
  const DataLoader c = DataLoader::open(prepared.data, prepared.model);
  EXPECT_NE(read(a, Split::train, 0, 20).inputs, read(c, Split::train, 0, 20).inputs);

  DataLoader copy = a;  // copies share the mapped shards and outlive the original
  { const DataLoader moved = std::move(c); }
  EXPECT_EQ(read(copy, Split::train, 0, 20).inputs, read(b, Split::train, 0, 20).inputs);
}

void expect_open_fails(const DataConfig& data, const ModelConfig& model, const std::string& part) {
  const std::string message = usage_error_message([&] { DataLoader::open(data, model); });
  EXPECT_NE(message.find(part), std::string::npos) << message;
}

TEST(LoaderErrors, MissingOrForeignDirectory) {
  PreparedDir prepared;
  DataConfig data = prepared.data;
  data.source = (prepared.dir / "nowhere").string();
  expect_open_fails(data, prepared.model, "nowhere");
  data.source = prepared.dir.path().string();  // a directory, but not a prepared one
  expect_open_fails(data, prepared.model, "dataset.json");
}

TEST(LoaderErrors, TokenizerAndVocabularyMismatch) {
  PreparedDir prepared;
  DataConfig data = prepared.data;
  data.tokenizer = "sentencepiece";
  expect_open_fails(data, prepared.model, "data.tokenizer=byte");
  ModelConfig model = prepared.model;
  model.vocab_size = 128;
  expect_open_fails(prepared.data, model, "model.vocab_size >= 256");
}

TEST(LoaderErrors, DamagedShardsAreNamed) {
  PreparedDir prepared;
  const auto shard = prepared.dir / "data/train_000001.bin";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 3);
  expect_open_fails(prepared.data, prepared.model, "train_000001.bin");
  testing::write_file(shard, "");
  expect_open_fails(prepared.data, prepared.model, "train_000001.bin");
  std::filesystem::remove(shard);
  expect_open_fails(prepared.data, prepared.model, "train_000001.bin");
}

/// Flips the lowest bit of the last token of `shard` (uint16, little-endian: its first byte): the
/// token changes by one and stays inside the vocabulary, which only the payload checksum notices.
void flip_last_token_bit(const std::filesystem::path& shard) {
  std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(-2, std::ios::end);
  const char byte = static_cast<char>(file.get() ^ 1);
  file.seekp(-2, std::ios::end);
  file.put(byte);
}

TEST(ShardVerification, AFlippedTokenIsFoundByTheRankThatOwnsTheShard) {
  PreparedDir prepared;
  const DataLoader intact = DataLoader::open(prepared.data, prepared.model);
  EXPECT_TRUE(intact.damaged_shards().empty());
  const std::vector<ShardChecksum> shards = intact.shard_checksums();
  ASSERT_GE(shards.size(), 4u);
  flip_last_token_bit(prepared.dir / "data" / shards[2].file);
  const DataLoader loader =
      DataLoader::open(prepared.data, prepared.model);  // opens: header intact
  EXPECT_EQ(loader.damaged_shards(), std::vector<std::string>{shards[2].file});
  // Shared over 3 "ranks": shard 2 is part 2's, and only it reports it; threads change nothing.
  uint64_t bytes = 0;
  for (int part = 0; part < 3; ++part) {
    for (int threads : {1, 3}) {
      const auto damaged = loader.damaged_shards(part, 3, threads);
      EXPECT_EQ(damaged,
                part == 2 ? std::vector<std::string>{shards[2].file} : std::vector<std::string>{})
          << "part " << part << ", " << threads << " threads";
    }
    bytes += loader.payload_bytes(part, 3);
  }
  EXPECT_EQ(bytes, loader.payload_bytes());
  EXPECT_EQ(loader.payload_bytes(), 2 * (prepared.train_tokens() + prepared.validation_tokens()));
}

TEST(LoaderErrors, SequencesLongerThanTheData) {
  PreparedDir prepared;
  ModelConfig model = prepared.model;
  model.seq_len = 100000;
  expect_open_fails(prepared.data, model, "model.seq_len");
}

TEST(LoaderErrors, NoValidationWindows) {
  PreparedDir prepared(0.0);
  const DataLoader loader = DataLoader::open(prepared.data, prepared.model);
  EXPECT_EQ(loader.samples_per_epoch(Split::validation), 0);
  std::vector<int32_t> inputs(16), targets(16);
  const std::string message = usage_error_message(
      [&] { loader.read(Split::validation, 0, 1, inputs.data(), targets.data()); });
  EXPECT_NE(message.find("val_fraction"), std::string::npos) << message;
}

}  // namespace
}  // namespace tessera
