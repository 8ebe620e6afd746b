#include <gtest/gtest.h>

#include "data_test_util.hpp"
#include "io/data/sentencepiece_tokenizer.hpp"

namespace tessera {
namespace {

using testing::generated_text;
using testing::TempDir;
using testing::usage_error_message;

TEST(ByteTokenizer, RoundTripsEveryByte) {
  std::string text;
  for (int b = 0; b < 256; ++b) text.push_back(static_cast<char>(b));
  text += "hello\n world";
  ByteTokenizer tokenizer;
  const auto ids = tokenizer.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < 256; ++i) EXPECT_EQ(ids[i], static_cast<int32_t>(i));
  EXPECT_EQ(tokenizer.decode(ids), text);
  EXPECT_EQ(tokenizer.vocab_size(), 256);
  EXPECT_EQ(tokenizer.id(), "byte");
}

TEST(TokenizerKind, IsThePartBeforeTheColon) {
  EXPECT_EQ(tokenizer_kind("byte"), "byte");
  EXPECT_EQ(tokenizer_kind("sentencepiece:0123456789abcdef"), "sentencepiece");
}

SentencePieceTokenizer train_on_generated_text(const TempDir& dir, const std::string& model_type) {
  testing::write_file(dir / "corpus.txt", generated_text(400));
  SentencePieceTrainOptions options;
  options.inputs = {dir / "corpus.txt"};
  options.output_dir = dir / "out";
  options.model_type = model_type;
  options.vocab_size = 340;
  return SentencePieceTokenizer::train(options);
}

class SentencePieceRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(SentencePieceRoundTrip, TrainEncodeDecode) {
  TempDir dir;
  const auto tokenizer = train_on_generated_text(dir, GetParam());
  EXPECT_EQ(tokenizer.vocab_size(), 340);
  ASSERT_TRUE(std::filesystem::is_regular_file(dir / "out/tokenizer.model"));

  const std::string text = generated_text(50);
  const auto ids = tokenizer.encode(text);
  EXPECT_LT(ids.size() * 3, text.size() * 2) << "a trained model should merge frequent words";
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer.vocab_size());
  EXPECT_EQ(tokenizer.decode(ids), text);

  // Unseen characters, repeated spaces and blank lines survive through byte fallback.
  const std::string unseen =
      "  Zebra ~ \xC3\xB1 \xE6\x97\xA5\xE6\x9C\xAC\n\n\ttabs  and   spaces\n";
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(unseen)), unseen);
}

INSTANTIATE_TEST_SUITE_P(ModelTypes, SentencePieceRoundTrip, ::testing::Values("bpe", "unigram"));

TEST(SentencePieceTokenizer, EncodingIsLineByLine) {
  TempDir dir;
  const auto tokenizer = train_on_generated_text(dir, "bpe");
  const std::string first = "the quick brown fox\n", second = "jumps over the lazy dog\n";
  auto expected = tokenizer.encode(first);
  const auto rest = tokenizer.encode(second);
  expected.insert(expected.end(), rest.begin(), rest.end());
  EXPECT_EQ(tokenizer.encode(first + second), expected);
}

TEST(SentencePieceTokenizer, IdIsStableAndNamesTheModel) {
  TempDir dir;
  const auto trained = train_on_generated_text(dir, "bpe");
  const auto loaded = SentencePieceTokenizer::load(dir / "out/tokenizer.model");
  EXPECT_EQ(trained.id(), loaded.id());
  EXPECT_EQ(trained.id().rfind("sentencepiece:", 0), 0u) << trained.id();
  EXPECT_EQ(trained.id().size(), std::string("sentencepiece:").size() + 16);
  EXPECT_EQ(loaded.encode("over the lazy dog\n"), trained.encode("over the lazy dog\n"));
}

TEST(SentencePieceTokenizer, UserMistakesAreUsageErrors) {
  TempDir dir;
  SentencePieceTrainOptions options;
  options.output_dir = dir / "out";
  options.inputs = {dir / "missing.txt"};
  EXPECT_NE(
      usage_error_message([&] { SentencePieceTokenizer::train(options); }).find("missing.txt"),
      std::string::npos);

  testing::write_file(dir / "corpus.txt", generated_text(20));
  options.inputs = {dir / "corpus.txt"};
  options.model_type = "wordpiece";
  EXPECT_NE(usage_error_message([&] { SentencePieceTokenizer::train(options); }).find("wordpiece"),
            std::string::npos);

  options.model_type = "bpe";
  options.vocab_size = 100000;
  EXPECT_NE(usage_error_message([&] { SentencePieceTokenizer::train(options); }).find("vocab"),
            std::string::npos);

  EXPECT_NE(usage_error_message([&] {
              SentencePieceTokenizer::load(dir / "none.model");
            }).find("none.model"),
            std::string::npos);
}

TEST(SentencePieceTokenizer, RoundTripsTinyShakespeare) {
  const auto corpus = testing::tinyshakespeare_path();
  if (corpus.empty()) {
    GTEST_SKIP() << "tinyshakespeare.txt not found (shared/data next to the repository, or set "
                    "TESSERA_TINYSHAKESPEARE)";
  }
  TempDir dir;
  SentencePieceTrainOptions options;
  options.inputs = {corpus};
  options.output_dir = dir.path();
  options.vocab_size = 1024;
  const auto tokenizer = SentencePieceTokenizer::train(options);
  const std::string text = testing::read_file(corpus);
  const auto ids = tokenizer.encode(text);
  EXPECT_EQ(tokenizer.decode(ids), text);
  EXPECT_GT(static_cast<double>(text.size()) / static_cast<double>(ids.size()), 2.0)
      << "bytes per token of a 1024-piece BPE on English text";
}

}  // namespace
}  // namespace tessera
