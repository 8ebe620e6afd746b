#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/checksum.hpp"
#include "data_test_util.hpp"
#include "io/data/prepare.hpp"
#include "io/data/sentencepiece_tokenizer.hpp"
#include "io/data/shard.hpp"
#include "io/data/tokenizer.hpp"

namespace tessera {
namespace {

using testing::generated_text;
using testing::TempDir;
using testing::usage_error_message;

nlohmann::json read_json(const std::filesystem::path& path) {
  return nlohmann::json::parse(testing::read_file(path));
}

// Concatenated tokens of a split's shards, checking each against its dataset.json entry.
std::vector<int32_t> read_split(const std::filesystem::path& dir, const nlohmann::json& split) {
  std::vector<int32_t> tokens;
  for (const auto& entry : split.at("shards")) {
    const ShardReader shard(dir / entry.at("file").get<std::string>());
    EXPECT_EQ(shard.size(), entry.at("tokens").get<uint64_t>());
    EXPECT_EQ(std::filesystem::file_size(shard.path()), entry.at("bytes").get<uint64_t>());
    EXPECT_EQ(to_hex16(shard.payload_checksum()), entry.at("fnv1a64").get<std::string>());
    EXPECT_TRUE(shard.verify_payload());
    const size_t old_size = tokens.size();
    tokens.resize(old_size + shard.size());
    shard.read(0, shard.size(), tokens.data() + old_size);
  }
  EXPECT_EQ(tokens.size(), split.at("tokens").get<size_t>());
  return tokens;
}

struct PreparedText {
  TempDir dir;
  std::string first = generated_text(150), second = generated_text(77);
  PrepareOptions options;

  PreparedText() {
    testing::write_file(dir / "a.txt", first);
    testing::write_file(dir / "b.txt", second);
    options.inputs = {dir / "a.txt", dir / "b.txt"};
    options.output_dir = dir / "data";
    options.val_fraction = 0.25;
    options.shard_tokens = 1000;
  }
};

TEST(Prepare, ByteSplitsAreDisjointAndConcatenateToTheText) {
  PreparedText text;
  prepare_dataset(text.options);
  const auto json = read_json(text.options.output_dir / "dataset.json");
  EXPECT_EQ(json.at("tokenizer").at("id"), "byte");
  EXPECT_EQ(json.at("tokenizer").at("vocab_size"), 256);

  auto tokens = read_split(text.options.output_dir, json.at("splits").at("train"));
  const auto validation = read_split(text.options.output_dir, json.at("splits").at("validation"));
  const size_t total = text.first.size() + text.second.size();
  EXPECT_EQ(validation.size(), static_cast<size_t>(std::floor(0.25 * static_cast<double>(total))));
  EXPECT_GT(json.at("splits").at("train").at("shards").size(), 1u) << "shard_tokens = 1000";
  EXPECT_TRUE(std::filesystem::exists(text.options.output_dir / "train_000000.bin"));
  EXPECT_TRUE(std::filesystem::exists(text.options.output_dir / "val_000000.bin"));

  tokens.insert(tokens.end(), validation.begin(), validation.end());
  EXPECT_EQ(tokens, ByteTokenizer().encode(text.first + text.second));
  EXPECT_GT(json.at("unigram_entropy").get<double>(), 1.0);
  EXPECT_LT(json.at("unigram_entropy").get<double>(), std::log(256.0));
}

TEST(Prepare, SentencePieceWritesTheModelAndItsTokens) {
  PreparedText text;
  text.options.tokenizer = "sentencepiece";
  text.options.vocab_size = 400;
  prepare_dataset(text.options);
  const auto dir = text.options.output_dir;
  const auto json = read_json(dir / "dataset.json");
  const auto tokenizer = SentencePieceTokenizer::load(dir / "tokenizer.model");
  EXPECT_EQ(json.at("tokenizer").at("id"), tokenizer.id());
  EXPECT_EQ(json.at("tokenizer").at("vocab_size"), 400);

  auto tokens = read_split(dir, json.at("splits").at("train"));
  const auto validation = read_split(dir, json.at("splits").at("validation"));
  tokens.insert(tokens.end(), validation.begin(), validation.end());
  auto expected = tokenizer.encode(text.first);
  const auto second = tokenizer.encode(text.second);
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(tokens, expected);
  EXPECT_EQ(tokenizer.decode(tokens), text.first + text.second);
}

TEST(Prepare, RerunRemovesStaleShards) {
  PreparedText text;
  prepare_dataset(text.options);
  ASSERT_TRUE(std::filesystem::exists(text.options.output_dir / "train_000002.bin"));
  text.options.shard_tokens = 1 << 20;
  prepare_dataset(text.options);
  EXPECT_TRUE(std::filesystem::exists(text.options.output_dir / "train_000000.bin"));
  EXPECT_FALSE(std::filesystem::exists(text.options.output_dir / "train_000002.bin"));
}

TEST(Prepare, ZeroValFractionWritesNoValidationShard) {
  PreparedText text;
  text.options.val_fraction = 0.0;
  prepare_dataset(text.options);
  const auto json = read_json(text.options.output_dir / "dataset.json");
  EXPECT_EQ(json.at("splits").at("validation").at("tokens"), 0);
  EXPECT_TRUE(json.at("splits").at("validation").at("shards").empty());
}

// Every shard's checksum: two datasets with the same list hold the same tokens, split alike.
std::vector<std::string> shard_checksums(const std::filesystem::path& dir) {
  std::vector<std::string> checksums;
  const auto json = read_json(dir / "dataset.json");
  for (const char* split : {"train", "validation"}) {
    for (const auto& shard : json.at("splits").at(split).at("shards")) {
      checksums.push_back(shard.at("fnv1a64").get<std::string>());
    }
  }
  checksums.push_back(json.at("unigram_entropy").dump());
  return checksums;
}

// The steps of prepare_dataset as `ranks` ranks take them, one rank after the other, the id
// counts summed as the command's reduction does.
void prepare_as_ranks(const PrepareOptions& options, int ranks) {
  begin_prepare(options);
  const std::unique_ptr<Tokenizer> tokenizer = open_prepare_tokenizer(options);
  int64_t chunks = 0;
  for (int rank = 0; rank < ranks; ++rank) {
    chunks = tokenize_chunks(options, *tokenizer, rank, ranks);
  }
  std::vector<double> train_counts(static_cast<size_t>(tokenizer->vocab_size()), 0.0);
  for (int rank = 0; rank < ranks; ++rank) {
    const std::vector<double> mine = write_shards(options, *tokenizer, chunks, rank, ranks);
    for (size_t id = 0; id < mine.size(); ++id) train_counts[id] += mine[id];
  }
  finish_prepare(options, *tokenizer, chunks, train_counts);
}

// Documents as plain files, as JSON Lines (plain, gzip, zstd are test_corpus.cpp's), over one
// rank or three, in chunks of any size: the same tokens.
TEST(Prepare, FormatRanksAndChunkSizeDoNotChangeTheTokens) {
  PreparedText text;
  prepare_dataset(text.options);
  const auto expected = shard_checksums(text.options.output_dir);
  ASSERT_FALSE(expected.empty());

  std::string lines;
  for (const std::string& document : {text.first, text.second}) {
    lines += nlohmann::json({{"text", document}, {"meta", 1}}).dump() + "\n";
  }
  testing::write_file(text.dir / "docs.jsonl", lines);
  PrepareOptions jsonl = text.options;
  jsonl.inputs = {text.dir / "docs.jsonl"};
  jsonl.output_dir = text.dir / "jsonl";
  for (const uint64_t chunk_bytes : {uint64_t{1}, uint64_t{700}, uint64_t{1} << 20}) {
    for (const int ranks : {1, 3}) {
      jsonl.chunk_bytes = chunk_bytes;
      prepare_as_ranks(jsonl, ranks);
      EXPECT_EQ(shard_checksums(jsonl.output_dir), expected)
          << ranks << " ranks, chunks of " << chunk_bytes << " bytes";
      EXPECT_FALSE(std::filesystem::exists(jsonl.output_dir / ".prepare"));
    }
  }
}

// A run stopped after some chunks (here: rank 0 of 2 finished, rank 1 did not) is resumed by
// the next run, which encodes only the rest; different inputs start over.
TEST(Prepare, AStoppedRunIsResumedWithItsFinishedChunks) {
  PreparedText text;
  text.options.chunk_bytes = 200;
  prepare_dataset(text.options);
  const auto expected = shard_checksums(text.options.output_dir);

  PrepareOptions resumed = text.options;
  resumed.output_dir = text.dir / "resumed";
  EXPECT_EQ(begin_prepare(resumed), 0);
  const std::unique_ptr<Tokenizer> tokenizer = open_prepare_tokenizer(resumed);
  const int64_t chunks = tokenize_chunks(resumed, *tokenizer, 0, 2);
  PrepareProgress last;
  EXPECT_EQ(begin_prepare(resumed), (chunks + 1) / 2);
  EXPECT_EQ(tokenize_chunks(resumed, *tokenizer, 0, 1, [&](const PrepareProgress& p) { last = p; }),
            chunks);
  EXPECT_EQ(last.chunks_kept, (chunks + 1) / 2);
  EXPECT_EQ(last.chunks_encoded, chunks / 2);
  finish_prepare(resumed, *tokenizer, chunks, write_shards(resumed, *tokenizer, chunks, 0, 1));
  EXPECT_EQ(shard_checksums(resumed.output_dir), expected);

  begin_prepare(resumed);
  tokenize_chunks(resumed, *tokenizer, 0, 2);
  testing::write_file(text.dir / "b.txt", text.second + "changed");
  EXPECT_EQ(begin_prepare(resumed), 0) << "a changed input invalidates the finished chunks";
}

// A kept chunk that was damaged since (a flipped bit) stops the run before the dataset is
// touched and is removed, so the next run encodes it again.
TEST(Prepare, ADamagedChunkIsRemovedAndEncodedAgain) {
  PreparedText text;
  text.options.chunk_bytes = 200;
  prepare_dataset(text.options);
  const auto expected = shard_checksums(text.options.output_dir);
  PrepareOptions again = text.options;
  again.inputs = {text.dir / "b.txt", text.dir / "a.txt"};

  begin_prepare(again);
  const std::unique_ptr<Tokenizer> tokenizer = open_prepare_tokenizer(again);
  const int64_t chunks = tokenize_chunks(again, *tokenizer, 0, 1);
  const auto chunk = again.output_dir / ".prepare" / "chunk_000001.bin";
  std::string bytes = testing::read_file(chunk);
  bytes.back() ^= 1;
  testing::write_file(chunk, bytes);
  const std::string message =
      usage_error_message([&] { write_shards(again, *tokenizer, chunks, 1, 2); });
  EXPECT_NE(message.find("chunk_000001.bin was damaged"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(chunk));
  EXPECT_EQ(shard_checksums(text.options.output_dir), expected) << "the old dataset is whole";

  prepare_dataset(again);
  EXPECT_NE(shard_checksums(again.output_dir), expected) << "the inputs in another order";
  std::swap(again.inputs[0], again.inputs[1]);
  prepare_dataset(again);
  EXPECT_EQ(shard_checksums(again.output_dir), expected);
}

// A prepare that fails (a bad line in a new input) leaves the dataset there before it whole.
TEST(Prepare, AFailedRunLeavesThePreviousDatasetReadable) {
  PreparedText text;
  prepare_dataset(text.options);
  const auto before = shard_checksums(text.options.output_dir);
  testing::write_file(text.dir / "bad.jsonl", "{\"text\": \"fine\"}\n{\"txt\": \"oops\"}\n");
  PrepareOptions options = text.options;
  options.inputs.push_back(text.dir / "bad.jsonl");
  EXPECT_NE(usage_error_message([&] { prepare_dataset(options); }).find("bad.jsonl line 2"),
            std::string::npos);
  EXPECT_EQ(shard_checksums(text.options.output_dir), before);
  for (const auto& checksum_file :
       read_json(text.options.output_dir / "dataset.json").at("splits").at("train").at("shards")) {
    EXPECT_TRUE(ShardReader(text.options.output_dir / checksum_file.at("file").get<std::string>())
                    .verify_payload());
  }
}

TEST(PrepareErrors, UserMistakesAreUsageErrors) {
  PreparedText text;
  PrepareOptions options = text.options;
  options.inputs.push_back(text.dir / "missing.txt");
  EXPECT_NE(usage_error_message([&] { prepare_dataset(options); }).find("missing.txt"),
            std::string::npos);

  options = text.options;
  options.inputs.clear();
  EXPECT_NE(usage_error_message([&] { prepare_dataset(options); }).find("input"),
            std::string::npos);

  options = text.options;
  options.tokenizer = "wordpiece";
  EXPECT_NE(usage_error_message([&] { prepare_dataset(options); }).find("wordpiece"),
            std::string::npos);

  options = text.options;
  options.tokenizer = "sentencepiece";
  testing::write_file(text.dir / "c.jsonl", "{\"text\": \"x\"}\n");
  options.inputs.push_back(text.dir / "c.jsonl");
  EXPECT_NE(usage_error_message([&] {
              prepare_dataset(options);
            }).find("sentencepiece is trained from plain-text files"),
            std::string::npos);

  options = text.options;
  options.val_fraction = 1.0;
  EXPECT_NE(usage_error_message([&] { prepare_dataset(options); }).find("val_fraction"),
            std::string::npos);

  options = text.options;
  testing::write_file(text.dir / "empty.txt", "");
  options.inputs = {text.dir / "empty.txt"};
  EXPECT_NE(usage_error_message([&] { prepare_dataset(options); }).find("no training tokens"),
            std::string::npos);
}

}  // namespace
}  // namespace tessera
