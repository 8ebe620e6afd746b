// io/config: every mistake a user can make is a UsageError of one line naming problem and fix.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "io/config/config.hpp"

namespace tessera {
namespace {

/// The message of the UsageError that parsing `text` with `overrides` throws ("" if none).
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, overrides);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

void expect_words(const std::string& message, const std::vector<std::string>& words) {
  ASSERT_FALSE(message.empty()) << "no UsageError thrown";
  EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
  for (const std::string& word : words) {
    EXPECT_NE(message.find(word), std::string::npos) << "'" << word << "' missing in: " << message;
  }
}

TEST(ConfigErrors, UnknownKeySuggestsTheNearest) {
  expect_words(error_of("[train]\nsteps = 3\nlrr = 1e-3\n"),
               {"unknown key 'train.lrr'", "<config text>:3", "did you mean 'train.lr'?",
                "doc/configuration.md"});
  expect_words(error_of("[model]\nnlayers = 3\n"), {"did you mean 'model.n_layers'?"});
}

TEST(ConfigErrors, UnknownKeyFarFromAnyListsTheSection) {
  expect_words(error_of("[train]\nlearning_rate_peak = 1\n"),
               {"unknown key 'train.learning_rate_peak'", "the keys of [train] are", "lr"});
}

TEST(ConfigErrors, UnknownSectionSuggestsTheNearest) {
  expect_words(error_of("[trian]\nlr = 1\n"), {"unknown section [trian]", "did you mean [train]?"});
  expect_words(error_of("[optimizer]\nlr = 1\n"), {"unknown section [optimizer]", "sections: run"});
}

TEST(ConfigErrors, KeyOutsideAnySection) {
  expect_words(error_of("steps = 3\n"),
               {"key 'steps' in <config text>:1 is outside any section", "move it under [train]"});
  expect_words(error_of("stepz = 3\n"), {"outside any section", "put it under its [section]"});
}

TEST(ConfigErrors, WrongTypes) {
  expect_words(error_of("[train]\nsteps = \"300\"\n"),
               {"train.steps = '300'", "must be an integer >= 1", "e.g. train.steps = 100"});
  expect_words(error_of("[train]\nsteps = 3.5\n"), {"train.steps = 3.5", "must be an integer"});
  expect_words(error_of("[train]\nlr = \"fast\"\n"), {"train.lr = 'fast'", "must be a float > 0"});
  expect_words(error_of("[train]\nlr = [1, 2]\n"), {"train.lr = an array", "must be a float"});
  expect_words(error_of("[data]\nsource = 3\n"), {"data.source = 3", "must be a string"});
  expect_words(error_of("[train]\ndecay_embeddings = 1\n"), {"must be a bool"});
  expect_words(error_of("[data]\nsource = \"\"\n"), {"must not be empty"});
}

TEST(ConfigErrors, OutOfRange) {
  expect_words(error_of("[train]\nsteps = 0\n"), {"train.steps = 0", "integer >= 1"});
  expect_words(error_of("[model]\nn_layers = -2\n"), {"model.n_layers = -2", "integer >= 1"});
  expect_words(error_of("[train]\nlr = -1e-3\n"), {"train.lr = -0.001", "float > 0"});
  expect_words(error_of("[train]\nlr = 0\n"), {"float > 0"});
  expect_words(error_of("[train]\nbeta2 = 1.0\n"), {"train.beta2 = 1.0", "float in [0, 1)"});
  expect_words(error_of("[train]\nlr = inf\n"), {"train.lr = inf"});
  expect_words(error_of("[model]\nvocab_size = 1\n"), {"integer >= 2"});
  expect_words(error_of("[model]\nseq_len = 0\n"), {"model.seq_len = 0"});
  expect_words(error_of("[train]\nsteps = 3000000000\n"), {"too large", "2147483647"});
  expect_words(error_of("[train]\nseed = -1\n"), {"train.seed = -1", "integer >= 0"});
}

TEST(ConfigErrors, EnumsNameTheirChoices) {
  expect_words(error_of("[model]\nfamily = \"bert\"\n"),
               {"model.family = 'bert'", "is not one of gpt2, openlm"});
  expect_words(error_of("[model]\nnorm = \"batchnorm\"\n"), {"one of layernorm, rmsnorm"});
  expect_words(error_of("[train]\nlr_schedule = \"linear\"\n"), {"one of cosine, constant"});
  expect_words(error_of("[log]\nprogress = \"fancy\"\n"), {"one of auto, bar, plain"});
}

TEST(ConfigErrors, TokenizersNameTheirForms) {
  for (const char* tokenizer : {"bpe", "hf:", "sentencepiece:x"}) {
    expect_words(error_of(std::string("[data]\ntokenizer = \"") + tokenizer + "\"\n"),
                 {"data.tokenizer = '" + std::string(tokenizer) + "'",
                  "use byte, sentencepiece, hf", "hf:PATH/tokenizer.json"});
  }
}

TEST(ConfigErrors, DataMixNeedsOneWeightPerSource) {
  expect_words(error_of("[data]\nsource = \"a\"\nsources = \"b,c\"\n"),
               {"data.source = 'a' and data.sources = 'b,c' are both set"});
  expect_words(error_of("[data]\nweights = \"1,2\"\n"), {"needs data.sources"});
  expect_words(error_of("[data]\nsources = \"b,,c\"\n"), {"has an empty entry"});
  expect_words(error_of("[data]\nsources = \"b,c\"\nweights = \"1,x\"\n"),
               {"'x' is not a positive number"});
}

TEST(ConfigErrors, CrossChecks) {
  expect_words(error_of("[model]\nd_model = 100\nn_heads = 3\n"),
               {"model.d_model = 100 is not divisible by model.n_heads = 3", "pick"});
  expect_words(error_of("[model]\nfamily = \"openlm\"\nd_model = 60\nn_heads = 4\n"),
               {"15 is odd", "rotary"});
  expect_words(error_of("[train]\nglobal_batch = 10\nmicro_batch = 4\n"),
               {"train.global_batch = 10 is not divisible by train.micro_batch = 4",
                "pick a multiple of 4"});
  expect_words(error_of("[train]\nglobal_batch = 4\nmicro_batch = 8\n"), {"not divisible"});
  expect_words(error_of("[train]\nsteps = 10\nwarmup_steps = 11\n"),
               {"train.warmup_steps = 11 exceeds train.steps = 10"});
  expect_words(error_of("[train]\nlr = 1e-4\nmin_lr = 1e-3\n"),
               {"train.min_lr = 0.001 exceeds train.lr = 1e-4", "min_lr <= lr"});
  // gpt2 has no rotary embedding, so an odd head_dim is fine there.
  EXPECT_EQ(error_of("[model]\nd_model = 60\nn_heads = 4\n"), "");
  // bf16 is valid on both backends; whether this CPU has bf16 kernels is the backend's to say.
  EXPECT_EQ(error_of("[train]\nprecision = \"bf16\"\n"), "");
  EXPECT_EQ(error_of("[train]\nprecision = \"bf16\"\nbackend = \"cuda\"\n"), "");
}

TEST(ConfigErrors, Overrides) {
  expect_words(error_of("", {"train.lrr=1"}),
               {"unknown key 'train.lrr'", "--set train.lrr=1", "did you mean 'train.lr'?"});
  expect_words(error_of("", {"train.lr"}), {"override 'train.lr' has no '='", "section.key=value"});
  expect_words(error_of("", {"train.lr=abc"}), {"train.lr = 'abc'", "--set train.lr=abc"});
  expect_words(error_of("", {"train.lr="}), {"train.lr = ''", "must be a float"});
  expect_words(error_of("", {"train.steps=2.5"}), {"must be an integer"});
  expect_words(error_of("", {"model.family=bert"}), {"is not one of gpt2, openlm"});
  // Overrides are checked with the file: a batch made inconsistent by --set is caught.
  expect_words(error_of("", {"train.micro_batch=3"}), {"is not divisible by train.micro_batch"});
}

TEST(ConfigErrors, SyntaxErrorNamesTheLine) {
  expect_words(error_of("[train]\nsteps = 3\nlr = = 1\n"),
               {"TOML syntax error in <config text>:3:", "fix that line"});
  expect_words(error_of("[train]\nsteps = 3\nsteps = 4\n"), {"TOML syntax error", ":3:"});
}

TEST(ConfigErrors, MissingAndUnreadableFiles) {
  try {
    load_config("no/such/x.toml", {});
    FAIL() << "no UsageError";
  } catch (const UsageError& error) {
    expect_words(error.what(), {"config file 'no/such/x.toml' not found", "configs/tiny.toml"});
  }
  auto dir = std::filesystem::temp_directory_path();
  try {
    load_config(dir, {});
    FAIL() << "no UsageError";
  } catch (const UsageError& error) {
    expect_words(error.what(), {"is not a file"});
  }
}

TEST(ConfigErrors, FileErrorsNameTheFile) {
  auto file = std::filesystem::temp_directory_path() / "tessera_test_bad.toml";
  std::ofstream(file) << "[model]\nd_model = 64\nfamly = \"gpt2\"\n";
  try {
    load_config(file, {});
    FAIL() << "no UsageError";
  } catch (const UsageError& error) {
    expect_words(error.what(), {file.string() + ":3", "did you mean 'model.family'?"});
  }
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace tessera
