// io/config: shipped configs, derived values, overrides, round trip, docs in sync.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "io/config/config.hpp"

namespace tessera {
namespace {

const std::filesystem::path kConfigs = TESSERA_CONFIGS_DIR;

std::vector<std::filesystem::path> shipped_configs() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kConfigs)) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Config, EveryShippedConfigParsesAndRoundTrips) {
  auto files = shipped_configs();
  ASSERT_GE(files.size(), 6u) << "configs/ should hold the six shipped configs";
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    Config config = load_config(file, {});
    EXPECT_EQ(parse_config(to_toml(config), {}), config);
  }
}

TEST(Config, TinyHasTheDocumentedShape) {
  Config c = load_config(kConfigs / "tiny.toml", {});
  EXPECT_EQ(c.model.family, ModelFamily::gpt2);
  EXPECT_EQ(c.model.n_layers, 2);
  EXPECT_EQ(c.model.d_model, 64);
  EXPECT_EQ(c.model.n_heads, 4);
  EXPECT_EQ(c.model.seq_len, 64);
  EXPECT_EQ(c.model.vocab_size, 256);
  EXPECT_EQ(c.model.ffn_hidden, 256);  // derived: 4 * 64
  EXPECT_EQ(c.train.global_batch, 16);
  EXPECT_EQ(c.train.micro_batch, 16);
  EXPECT_FLOAT_EQ(c.train.lr, 1e-2f);
  EXPECT_EQ(c.data.source, "synthetic");
  EXPECT_EQ(c.run.dir, std::filesystem::path("runs/tiny"));
  EXPECT_EQ(c.eval.every, 100);
  EXPECT_EQ(load_config(kConfigs / "tiny-openlm.toml", {}).model.family, ModelFamily::openlm);
}

TEST(Config, LargeConfigsHaveTheirShapes) {
  Config gpt2 = load_config(kConfigs / "gpt2-124m.toml", {});
  EXPECT_EQ(gpt2.model.vocab_size, 50304);
  EXPECT_EQ(gpt2.train.global_batch, 512);
  EXPECT_EQ(gpt2.train.warmup_steps, 700);
  EXPECT_EQ(gpt2.model.ffn_hidden, 3072);
  Config big = load_config(kConfigs / "openlm-7b.toml", {});
  EXPECT_EQ(big.model.d_model, 4096);
  EXPECT_EQ(big.model.ffn_hidden, 11008);  // LLaMA-7B's width
  EXPECT_EQ(load_config(kConfigs / "openlm-1b.toml", {}).model.ffn_hidden, 5632);
}

TEST(Config, EmptyTextGivesDefaultsWithDerivedFfn) {
  Config c = parse_config("", {});
  Config expected;
  expected.model.ffn_hidden = 4 * expected.model.d_model;
  EXPECT_EQ(c, expected);
  EXPECT_EQ(parse_config("[model]\nfamily = \"openlm\"\nd_model = 96\nn_heads = 3\n", {})
                .model.ffn_hidden,
            256);  // 256 * ceil(8 * 96 / 3 / 256) = 256 * 1
  EXPECT_EQ(parse_config("[model]\nffn_hidden = 100\n", {}).model.ffn_hidden, 100);
}

TEST(Config, IntegersAreAcceptedForFloats) {
  EXPECT_FLOAT_EQ(parse_config("[train]\nlr = 1\nmin_lr = 0\n", {}).train.lr, 1.0f);
}

TEST(Config, DpTakesAutoForZero) {
  EXPECT_EQ(parse_config("[parallel]\ndp = \"auto\"\n", {}).parallel.dp, 0);
  EXPECT_EQ(parse_config("[parallel]\ndp = 2\n", {"parallel.dp=auto"}).parallel.dp, 0);
  try {
    parse_config("[parallel]\ndp = \"all\"\n", {});
    ADD_FAILURE() << "dp = \"all\" was accepted";
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("must be an integer >= 0 or \"auto\""),
              std::string::npos)
        << error.what();
  }
}

TEST(Config, OverridesApplyAfterTheFile) {
  Config c = load_config(
      kConfigs / "tiny.toml",
      {"train.lr=1e-4", "model.family=openlm", "train.steps = 7", "data.source=/scratch/me/corpus",
       "run.dir=2024", "data.tokenizer=\"sentencepiece\"", "train.decay_embeddings=true",
       "train.warmup_steps=0", "train.min_lr=0"});
  EXPECT_FLOAT_EQ(c.train.lr, 1e-4f);
  EXPECT_EQ(c.model.family, ModelFamily::openlm);
  EXPECT_EQ(c.model.ffn_hidden, 256);  // derived after the override, for openlm
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.data.source, "/scratch/me/corpus");       // bare word: a string
  EXPECT_EQ(c.run.dir, std::filesystem::path("2024"));  // a number given to a string key
  EXPECT_EQ(c.data.tokenizer, "sentencepiece");
  EXPECT_TRUE(c.train.decay_embeddings);
}

TEST(Config, LaterOverrideWins) {
  EXPECT_EQ(parse_config("", {"train.steps=50", "train.steps=90"}).train.steps, 90);
}

TEST(Config, RoundTripOfEveryNonDefaultValue) {
  Config c = parse_config(
      "", {"model.family=openlm", "model.norm=rmsnorm", "model.z_loss=1e-4", "model.norm_eps=1e-6",
           "train.lr_schedule=constant", "train.seed=18446744", "train.lr=0.1",
           "train.min_lr=0.0123", "log.peak_tflops=312.5", "log.progress=plain",
           "run.dir=runs/a \"quoted\" dir", "train.beta2=0.999"});
  std::string text = to_toml(c);
  EXPECT_EQ(parse_config(text, {}), c) << text;
  EXPECT_NE(text.find("lr = 0.1\n"), std::string::npos) << "floats print shortest: " << text;
  EXPECT_NE(text.find("ffn_hidden = 256\n"), std::string::npos) << "derived values resolved";
}

TEST(Config, ToTomlWritesEveryKey) {
  std::string text = to_toml(parse_config("", {}));
  for (const ConfigKeyInfo& key : describe_config_keys()) {
    std::string leaf = key.name.substr(key.name.find('.') + 1);
    EXPECT_NE(text.find("\n" + leaf + " = "), std::string::npos) << key.name;
  }
}

TEST(Config, DescribeListsEveryKeyOnceWithTypeAndDescription) {
  auto keys = describe_config_keys();
  std::set<std::string> names;
  for (const auto& key : keys) {
    EXPECT_TRUE(names.insert(key.name).second) << "duplicate " << key.name;
    EXPECT_FALSE(key.type.empty()) << key.name;
    EXPECT_FALSE(key.description.empty()) << key.name;
    EXPECT_EQ(key.description.find('|'), std::string::npos) << "breaks the doc table";
  }
  for (const char* fixed :
       {"run.dir", "train.steps", "train.seed", "train.global_batch", "train.micro_batch",
        "train.lr", "model.family", "data.source", "data.tokenizer"}) {
    EXPECT_TRUE(names.count(fixed)) << fixed << " is part of tessera's interface";
  }
  EXPECT_EQ(keys.front().name, "run.dir");
  auto lr = std::find_if(keys.begin(), keys.end(), [](auto& k) { return k.name == "train.lr"; });
  EXPECT_EQ(lr->type, "float > 0");
  EXPECT_EQ(lr->default_value, "0.001");
}

/// The key table of doc/configuration.md, as describe_config_keys() says it should read.
std::string expected_doc_table() {
  std::string table = "| key | type | default | description |\n|---|---|---|---|\n";
  for (const ConfigKeyInfo& key : describe_config_keys()) {
    table += "| `" + key.name + "` | " + key.type + " | `" + key.default_value + "` | " +
             key.description + " |\n";
  }
  return table;
}

std::string read_doc() {
  std::ifstream in(TESSERA_CONFIG_DOC);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ConfigDoc, ListsExactlyTheSchemaKeys) {
  std::istringstream doc(read_doc());
  std::vector<std::string> documented, known;
  bool in_keys = false;  // the key table is the one under "## Keys"
  for (std::string line; std::getline(doc, line);) {
    if (line.starts_with("## ")) in_keys = line == "## Keys";
    if (in_keys && line.starts_with("| `")) {
      documented.push_back(line.substr(3, line.find('`', 3) - 3));
    }
  }
  for (const auto& key : describe_config_keys()) known.push_back(key.name);
  EXPECT_EQ(documented, known) << "doc/configuration.md and the key table disagree";
}

TEST(ConfigDoc, TableMatchesTheSchemaWordForWord) {
  std::string expected = expected_doc_table();
  bool in_sync = read_doc().find(expected) != std::string::npos;
  if (!in_sync) std::ofstream("configuration_keys.md") << expected;
  EXPECT_TRUE(in_sync) << "doc/configuration.md is out of date: replace its key table with "
                       << std::filesystem::absolute("configuration_keys.md").string();
}

}  // namespace
}  // namespace tessera
