// HfTokenizer on small hand-made tokenizer.json files: each rule of the pipeline on a case small
// enough to work out by hand, and every refusal. Real vocabularies against Hugging Face's own
// library are test_hf_conformance.py's work.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "data_test_util.hpp"
#include "io/data/data_loader.hpp"
#include "io/data/hf/hf_tokenizer.hpp"
#include "io/data/prepare.hpp"
#include "io/data/tokenizer_spec.hpp"

namespace tessera {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::usage_error_message;

// Llama-2's pipeline in miniature: "▁" for spaces and in front, byte fallback, <s> in front.
json llama_like() {
  json vocab = {{"<unk>", 0},  {"<s>", 1}, {"</s>", 2}, {"<0xC3>", 3}, {"<0xA9>", 4},
                {"\u2581", 5}, {"h", 6},   {"i", 7},    {"hi", 8},     {"\u2581hi", 9}};
  return {{"added_tokens",
           {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
            {{"id", 1}, {"content", "<s>"}, {"special", true}},
            {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", "\u2581"}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", {"h i", "\u2581 hi"}}}}};
}

std::filesystem::path write_tokenizer(const TempDir& dir, const json& spec,
                                      const std::string& name = "tokenizer.json") {
  testing::write_file(dir / name, spec.dump());
  return dir / name;
}

TEST(HfTokenizer, MergesByRankAndAddsTheTemplatesTokens) {
  TempDir dir;
  const HfTokenizer tokenizer = HfTokenizer::load(write_tokenizer(dir, llama_like()));
  EXPECT_EQ(tokenizer.encode("hi hi"), (std::vector<int32_t>{1, 9, 9}));
  EXPECT_EQ(tokenizer.encode_without_special_tokens("hi hi"), (std::vector<int32_t>{9, 9}));
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{1, 9, 9}), "<s> hi hi");
  EXPECT_EQ(tokenizer.decode_skipping_special_tokens(std::vector<int32_t>{1, 9, 9}), "hi hi");
  EXPECT_EQ(tokenizer.encode(""), (std::vector<int32_t>{1}));  // empty text: no "▁"
}

TEST(HfTokenizer, BytesOutsideTheVocabularyFallBackOrBecomeOneUnknown) {
  TempDir dir;
  const HfTokenizer tokenizer = HfTokenizer::load(write_tokenizer(dir, llama_like()));
  // é is C3 A9, both byte tokens exist; z has none, so it is <unk>, and a run of them is one.
  EXPECT_EQ(tokenizer.encode_without_special_tokens("\u00e9"), (std::vector<int32_t>{5, 3, 4}));
  EXPECT_EQ(tokenizer.encode_without_special_tokens("zz"), (std::vector<int32_t>{5, 0}));
  EXPECT_EQ(tokenizer.decode_skipping_special_tokens(std::vector<int32_t>{5, 3, 4}), "\u00e9");
  // Invalid UTF-8 is read as U+FFFD (EF BF BD: no byte tokens, so one <unk>).
  EXPECT_EQ(tokenizer.encode_without_special_tokens("\xff"), (std::vector<int32_t>{5, 0}));
}

TEST(HfTokenizer, SpecialTokensAreCutOutBeforeNormalizing) {
  TempDir dir;
  const HfTokenizer tokenizer = HfTokenizer::load(write_tokenizer(dir, llama_like()));
  // Each piece is normalized on its own, so Prepend puts "▁" after </s> too (Llama-2's legacy
  // behaviour, which Hugging Face's library keeps).
  EXPECT_EQ(tokenizer.encode_without_special_tokens("hi</s>hi"), (std::vector<int32_t>{9, 2, 9}));
  EXPECT_EQ(tokenizer.special_tokens(),
            (std::map<std::string, int32_t>{{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}}));
  EXPECT_EQ(tokenizer.vocab_size(), 10);
}

TEST(HfTokenizer, AddedTokensBeyondTheVocabularyWidenIt) {
  TempDir dir;
  json spec = llama_like();
  spec["added_tokens"].push_back({{"id", 14}, {"content", "<pad>"}, {"special", true}});
  const HfTokenizer tokenizer = HfTokenizer::load(write_tokenizer(dir, spec));
  EXPECT_EQ(tokenizer.vocab_size(), 15);
  EXPECT_EQ(tokenizer.encode_without_special_tokens("<pad>hi"), (std::vector<int32_t>{14, 9}));
}

TEST(HfTokenizer, IdIsTheFilesHashAndStable) {
  TempDir dir;
  const auto path = write_tokenizer(dir, llama_like());
  const std::string id = HfTokenizer::load(path).id();
  EXPECT_EQ(id.size(), 3u + 16u);
  EXPECT_EQ(id.substr(0, 3), "hf:");
  EXPECT_EQ(hf_tokenizer_id(path), id);
  EXPECT_EQ(HfTokenizer::load(write_tokenizer(dir, llama_like(), "same.json")).id(), id);
  testing::write_file(dir / "spaced.json", llama_like().dump(1));
  EXPECT_NE(HfTokenizer::load(dir / "spaced.json").id(), id);
  EXPECT_EQ(open_tokenizer("hf:" + path.string())->id(), id);
}

TEST(HfTokenizer, ConcurrentEncodesAgree) {
  TempDir dir;
  const HfTokenizer tokenizer = HfTokenizer::load(write_tokenizer(dir, llama_like()));
  const std::string text = "hi hi \u00e9 zz hi</s>hihi";
  const std::vector<int32_t> expected = tokenizer.encode(text);
  std::vector<std::thread> threads;
  std::vector<int> agreed(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) agreed[t] += tokenizer.encode(text) == expected;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(agreed, std::vector<int>(4, 200));
}

// A pre-tokenizer regex that backtracks without end on some text (nested quantifiers) stops at
// PCRE2's match limit with a message naming the pattern; it never hangs a prepare.
TEST(HfTokenizerErrors, ARunawayRegexStopsWithAMessage) {
  TempDir dir;
  json runaway = llama_like();
  runaway["pre_tokenizer"] = {{"type", "Split"},
                              {"pattern", {{"Regex", "(a+)+$"}}},
                              {"behavior", "Isolated"},
                              {"invert", false}};
  const HfTokenizer tokenizer = HfTokenizer::load(write_tokenizer(dir, runaway));
  EXPECT_EQ(tokenizer.encode("hi"), (std::vector<int32_t>{1, 9})) << "fine where it ends";
  const std::string message =
      usage_error_message([&] { tokenizer.encode(std::string(64, 'a') + "!"); });  // "▁" + 65
  EXPECT_NE(message.find("regex (a+)+$ gave up on a text of 68 bytes (match limit"),
            std::string::npos)
      << message;
}

TEST(HfTokenizerErrors, UnsupportedFeaturesAreNamed) {
  TempDir dir;
  auto refusal = [&](const json& spec) {
    const auto path = write_tokenizer(dir, spec, "bad.json");
    return usage_error_message([&] { HfTokenizer::load(path); });
  };
  json wordpiece = llama_like();
  wordpiece["model"]["type"] = "WordPiece";
  EXPECT_NE(refusal(wordpiece).find("model type 'WordPiece' is not supported"), std::string::npos);
  json bert = llama_like();
  bert["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_NE(refusal(bert).find("BertNormalizer"), std::string::npos);
  json dropout = llama_like();
  dropout["model"]["dropout"] = 0.1;
  EXPECT_NE(refusal(dropout).find("dropout"), std::string::npos);
  json renumbered = llama_like();
  renumbered["added_tokens"][2]["id"] = 7;
  EXPECT_NE(refusal(renumbered).find("added token '</s>' has id 7"), std::string::npos);
  EXPECT_NE(usage_error_message([&] { HfTokenizer::load(dir / "none.json"); }).find("none.json"),
            std::string::npos);
  testing::write_file(dir / "truncated.json", llama_like().dump().substr(0, 40));
  EXPECT_NE(usage_error_message([&] {
              HfTokenizer::load(dir / "truncated.json");
            }).find("is not valid JSON"),
            std::string::npos);
  EXPECT_NE(usage_error_message([] { open_tokenizer("gpt2"); }).find("hf:PATH/tokenizer.json"),
            std::string::npos);
}

TEST(HfTokenizerErrors, PostProcessorIdsOutsideTheIdRangeAreRefused) {
  // Read as int32 they were cut to another id (2^40 to 0, <unk>) or went negative.
  TempDir dir;
  auto refusal = [&](const json& spec) {
    const auto path = write_tokenizer(dir, spec, "bad.json");
    return usage_error_message([&] { HfTokenizer::load(path); });
  };
  for (const json& id : {json(-1), json(int64_t{1} << 40), json(1.5), json("1")}) {
    json template_ids = llama_like();
    template_ids["post_processor"]["special_tokens"]["<s>"]["ids"] = {id};
    EXPECT_NE(refusal(template_ids).find("special token ids must be whole numbers in [0, 2^24)"),
              std::string::npos)
        << id;
    json roberta = llama_like();
    roberta["post_processor"] = {
        {"type", "RobertaProcessing"}, {"cls", {"<s>", 1}}, {"sep", {"</s>", id}}};
    EXPECT_NE(refusal(roberta).find("with id in [0, 2^24)"), std::string::npos) << id;
  }
}

TEST(HfPrepare, DatasetKeepsTheTokenizerAndTheLoaderChecksIt) {
  TempDir dir;
  const auto tokenizer_file = write_tokenizer(dir, llama_like());
  testing::write_file(dir / "a.txt", std::string(400, 'h') + " hi hi \u00e9");
  PrepareOptions options;
  options.inputs = {dir / "a.txt"};
  options.output_dir = dir / "data";
  options.tokenizer = "hf:" + tokenizer_file.string();
  options.val_fraction = 0.25;
  prepare_dataset(options);
  const json dataset = json::parse(testing::read_file(dir / "data" / kDatasetJson));
  EXPECT_EQ(dataset.at("tokenizer").at("id"), hf_tokenizer_id(tokenizer_file));
  EXPECT_EQ(dataset.at("tokenizer").at("file"), kHfTokenizerFile);
  EXPECT_EQ(dataset.at("tokenizer").at("special_tokens").at("<s>"), 1);
  EXPECT_EQ(testing::read_file(dir / "data" / kHfTokenizerFile),
            testing::read_file(tokenizer_file));

  DataConfig data;
  data.source = (dir / "data").string();
  ModelConfig model;
  model.seq_len = 8;
  model.vocab_size = 16;
  for (const std::string& spec : {std::string("hf"), "hf:" + tokenizer_file.string()}) {
    data.tokenizer = spec;
    const DataLoader loader = DataLoader::open(data, model);
    EXPECT_EQ(loader.tokenizer_id(), hf_tokenizer_id(tokenizer_file));
    EXPECT_EQ(loader.special_tokens().at("</s>"), 2);
  }
  testing::write_file(dir / "other.json", llama_like().dump(2));
  data.tokenizer = "hf:" + (dir / "other.json").string();
  EXPECT_NE(usage_error_message([&] {
              DataLoader::open(data, model);
            }).find("is not the tokenizer data.source"),
            std::string::npos);
  data.tokenizer = "byte";
  EXPECT_NE(usage_error_message([&] { DataLoader::open(data, model); }).find("data.tokenizer=hf"),
            std::string::npos);
  model.vocab_size = 8;
  data.tokenizer = "hf";
  EXPECT_NE(
      usage_error_message([&] { DataLoader::open(data, model); }).find("model.vocab_size >= 10"),
      std::string::npos);
}

}  // namespace
}  // namespace tessera
