#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "data_test_util.hpp"
#include "io/data/shard.hpp"

namespace tessera {
namespace {

using testing::TempDir;
using testing::usage_error_message;

std::vector<int32_t> ramp(size_t n, int32_t vocab) {
  std::vector<int32_t> tokens(n);
  for (size_t i = 0; i < n; ++i) tokens[i] = static_cast<int32_t>((i * 7919) % vocab);
  return tokens;
}

std::vector<int32_t> read_all(const ShardReader& shard) {
  std::vector<int32_t> tokens(shard.size());
  shard.read(0, shard.size(), tokens.data());
  return tokens;
}

struct DtypeCase {
  int32_t vocab;
  TokenDtype dtype;
};

class ShardRoundTrip : public ::testing::TestWithParam<DtypeCase> {};

TEST_P(ShardRoundTrip, WritesAndReadsBack) {
  const auto [vocab, dtype] = GetParam();
  TempDir dir;
  const auto tokens = ramp(10007, vocab);
  const auto path = dir / "s.bin";
  const ShardSummary summary = write_shard(path, tokens, "sentencepiece:00ff", vocab);
  const uint64_t width = static_cast<uint64_t>(dtype);
  EXPECT_EQ(summary.tokens, tokens.size());
  EXPECT_EQ(summary.bytes, kShardHeaderBytes + tokens.size() * width);
  EXPECT_EQ(std::filesystem::file_size(path), summary.bytes);
  EXPECT_FALSE(std::filesystem::exists(dir / "s.bin.tmp"));

  const ShardReader shard(path);
  EXPECT_EQ(shard.dtype(), dtype);
  EXPECT_EQ(shard.size(), tokens.size());
  EXPECT_EQ(shard.vocab_size(), vocab);
  EXPECT_EQ(shard.tokenizer_id(), "sentencepiece:00ff");
  EXPECT_EQ(shard.payload_checksum(), summary.payload_checksum);
  EXPECT_TRUE(shard.verify_payload());
  EXPECT_EQ(read_all(shard), tokens);

  std::vector<int32_t> middle(100);
  shard.read(5000, 100, middle.data());
  EXPECT_TRUE(std::equal(middle.begin(), middle.end(), tokens.begin() + 5000));

  const ShardReader copy = shard;  // copies share the mapping
  EXPECT_EQ(read_all(copy), tokens);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ShardRoundTrip,
                         ::testing::Values(DtypeCase{256, TokenDtype::uint16},
                                           DtypeCase{65536, TokenDtype::uint16},
                                           DtypeCase{65537, TokenDtype::uint32},
                                           DtypeCase{1 << 20, TokenDtype::uint32}));

TEST(Shard, EmptyTokenListIsAValidShard) {
  TempDir dir;
  write_shard(dir / "e.bin", {}, "byte", 256);
  const ShardReader shard(dir / "e.bin");
  EXPECT_EQ(shard.size(), 0u);
}

// Writes a valid byte shard of 1000 tokens, lets `damage` edit its bytes and returns the message
// of the UsageError that opening it raises.
template <typename Damage>
std::string open_damaged(const TempDir& dir, Damage damage) {
  const auto path = dir / "damaged_000003.bin";
  write_shard(path, ramp(1000, 256), "byte", 256);
  std::string bytes = testing::read_file(path);
  damage(bytes);
  testing::write_file(path, bytes);
  return usage_error_message([&] { ShardReader shard(path); });
}

void expect_names_file_and_fix(const std::string& message, const std::string& problem) {
  EXPECT_NE(message.find("damaged_000003.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("tessera prepare"), std::string::npos) << message;
  EXPECT_NE(message.find(problem), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
}

TEST(ShardErrors, EmptyFile) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b.clear(); }), "empty");
}

TEST(ShardErrors, TruncatedPayload) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b.resize(b.size() - 1); }),
                            "truncated");
}

TEST(ShardErrors, TruncatedHeader) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b.resize(50); }), "truncated");
}

TEST(ShardErrors, TrailingBytes) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b += "xx"; }), "trailing");
}

TEST(ShardErrors, BadMagic) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b[0] = 'X'; }),
                            "not a tessera shard");
}

TEST(ShardErrors, WrongVersion) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b[8] = 7; }), "version 7");
}

TEST(ShardErrors, CorruptHeader) {
  TempDir dir;
  expect_names_file_and_fix(open_damaged(dir, [](std::string& b) { b[40] ^= 1; }), "corrupt");
}

TEST(ShardErrors, TokenOutsideVocabulary) {
  TempDir dir;
  const auto path = dir / "damaged_000003.bin";
  write_shard(path, ramp(1000, 256), "byte", 256);
  std::string bytes = testing::read_file(path);
  bytes[kShardHeaderBytes + 2 * 10 + 1] = 0x12;  // high byte of token 10: 0x12xx >= 256
  testing::write_file(path, bytes);
  const ShardReader shard(path);  // the header is intact
  EXPECT_FALSE(shard.verify_payload());
  std::vector<int32_t> tokens(20);
  expect_names_file_and_fix(usage_error_message([&] { shard.read(0, 20, tokens.data()); }),
                            "outside its vocabulary");
  shard.read(11, 5, tokens.data());  // the rest still reads
}

TEST(ShardErrors, MissingFile) {
  TempDir dir;
  const std::string message = usage_error_message([&] { ShardReader shard(dir / "nope.bin"); });
  EXPECT_NE(message.find("nope.bin"), std::string::npos) << message;
}

}  // namespace
}  // namespace tessera
