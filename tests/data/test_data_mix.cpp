// data.sources: the blend of sources by weight, and the loader reading a mix.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "data_test_util.hpp"
#include "io/data/data_loader.hpp"
#include "io/data/prepare.hpp"
#include "io/data/source_blend.hpp"

namespace tessera {
namespace {

using testing::TempDir;
using testing::usage_error_message;

TEST(SourceBlend, EveryBlockHoldsEachSourcesShareWithinOne) {
  const SourceBlend blend({5, 2, 1, 2.5}, 99);
  std::vector<uint64_t> counts(4, 0);
  for (uint64_t sample = 0; sample < 50 * kBlendBlock; ++sample) {
    ++counts[blend.draw(sample).source];
    if ((sample + 1) % kBlendBlock == 0) {
      EXPECT_EQ(blend.counts(sample + 1), counts);
      for (size_t s = 0; s < 4; ++s) {
        ASSERT_LE(std::abs(static_cast<double>(counts[s]) -
                           blend.weights()[s] * static_cast<double>(sample + 1)),
                  1.0 + 1e-9)
            << "source " << s << " after " << sample + 1 << " samples";
      }
    }
  }
  EXPECT_EQ(blend.counts(1000), [&] {
    std::vector<uint64_t> partial(4, 0);
    for (uint64_t sample = 0; sample < 1000; ++sample) ++partial[blend.draw(sample).source];
    return partial;
  }());
}

// A source's indices 0, 1, 2, ... are each drawn once: it is read as it would be alone.
TEST(SourceBlend, EachSourceGetsConsecutiveIndicesOnce) {
  const SourceBlend blend({0.7, 0.3}, 7);
  const uint64_t samples = 20 * kBlendBlock;
  std::vector<std::set<uint64_t>> indices(2);
  for (uint64_t sample = 0; sample < samples; ++sample) {
    const SourceBlend::Draw draw = blend.draw(sample);
    EXPECT_TRUE(indices[draw.source].insert(draw.index).second) << "sample " << sample;
  }
  for (size_t s = 0; s < 2; ++s) {
    ASSERT_FALSE(indices[s].empty());
    EXPECT_EQ(*indices[s].rbegin() + 1, indices[s].size()) << "source " << s;
  }
}

TEST(SourceBlend, TheSeedChoosesTheInterleaving) {
  const SourceBlend a({0.5, 0.5}, 1), b({0.5, 0.5}, 1), c({0.5, 0.5}, 2);
  int differ = 0;
  for (uint64_t sample = 0; sample < kBlendBlock; ++sample) {
    EXPECT_EQ(a.draw(sample).source, b.draw(sample).source);
    differ += a.draw(sample).source != c.draw(sample).source;
  }
  EXPECT_GT(differ, 32);
}

// Two byte-level datasets told apart by their bytes: letters and digits.
struct TwoSources {
  TempDir dir;
  DataConfig data;
  ModelConfig model;

  TwoSources() {
    std::string letters, digits;
    for (int i = 0; i < 4000; ++i) {
      letters += static_cast<char>('a' + i * 7 % 26);
      digits += static_cast<char>('0' + i * 3 % 10);
    }
    for (const auto& [name, text] : {std::pair{"letters", letters}, std::pair{"digits", digits}}) {
      testing::write_file(dir / (std::string(name) + ".txt"), text);
      PrepareOptions options;
      options.inputs = {dir / (std::string(name) + ".txt")};
      options.output_dir = dir / name;
      options.shard_tokens = 1000;
      prepare_dataset(options);
    }
    data.sources = (dir / "letters").string() + "," + (dir / "digits").string();
    data.weights = "0.7,0.3";
    model.seq_len = 16;
  }
};

// 1000 steps of 8 samples: the tokens read from each source (told by their bytes) are within
// 1 % of its weight, and exactly what drawn() reports; a source runs through its epochs.
TEST(MixedLoader, TokensFollowTheWeights) {
  TwoSources mix;
  const DataLoader loader = DataLoader::open(mix.data, mix.model);
  const int64_t samples = 1000 * 8;
  std::vector<int32_t> inputs(static_cast<size_t>(samples) * 16), targets(inputs.size());
  loader.read(Split::train, 0, static_cast<int>(samples), inputs.data(), targets.data());
  int64_t letters = 0;
  for (size_t row = 0; row < static_cast<size_t>(samples); ++row) {
    const bool letter = inputs[row * 16] >= 'a';
    for (size_t t = 0; t < 16; ++t) ASSERT_EQ(inputs[row * 16 + t] >= 'a', letter);
    letters += letter;
  }
  const double share = static_cast<double>(letters) / static_cast<double>(samples);
  EXPECT_NEAR(share, 0.7, 0.007);
  const std::vector<SourceDraw> drawn = loader.drawn(samples);
  ASSERT_EQ(drawn.size(), 2u);
  EXPECT_EQ(drawn[0].samples, static_cast<uint64_t>(letters));
  EXPECT_EQ(drawn[1].samples, static_cast<uint64_t>(samples - letters));
  EXPECT_EQ(drawn[0].tokens, static_cast<uint64_t>(letters) * 16);
  EXPECT_DOUBLE_EQ(drawn[0].weight, 0.7);
  EXPECT_NE(loader.describe().find("mix of 2"), std::string::npos);
  EXPECT_EQ(loader.shard_checksums().size(), 10u);  // 4 train shards and 1 val of each source
  EXPECT_NE(loader.shard_checksums()[0].file.find("letters/train_000000.bin"), std::string::npos);
}

// Any slicing of the global samples over ranks and any restart point read the same tokens.
TEST(MixedLoader, ReadsDoNotDependOnHowSamplesAreShared) {
  TwoSources mix;
  const DataLoader loader = DataLoader::open(mix.data, mix.model);
  const int samples = 600;
  std::vector<int32_t> whole(static_cast<size_t>(samples) * 16), targets(whole.size());
  loader.read(Split::train, 0, samples, whole.data(), targets.data());
  const DataLoader reopened = DataLoader::open(mix.data, mix.model);
  for (const int ranks : {2, 3, 8}) {
    std::vector<int32_t> pieced(whole.size()), scratch(whole.size());
    for (int rank = 0; rank < ranks; ++rank) {
      for (int sample = rank; sample < samples; sample += ranks) {
        reopened.read(Split::train, sample, 1, pieced.data() + sample * 16, scratch.data());
      }
    }
    EXPECT_EQ(pieced, whole) << ranks << " ranks";
  }
}

TEST(MixedLoader, WeightsDefaultToTheSourcesSizes) {
  TwoSources mix;
  mix.data.weights.clear();
  const DataLoader loader = DataLoader::open(mix.data, mix.model);
  const std::vector<SourceDraw> drawn = loader.drawn(100 * kBlendBlock);
  EXPECT_DOUBLE_EQ(drawn[0].weight, 0.5);  // equal sizes
}

TEST(MixedLoaderErrors, SourcesMustShareATokenizerAndExist) {
  TwoSources mix;
  testing::write_file(mix.dir / "more.txt", testing::generated_text(300));
  PrepareOptions sentencepiece;
  sentencepiece.inputs = {mix.dir / "more.txt"};
  sentencepiece.output_dir = mix.dir / "sp";
  sentencepiece.tokenizer = "sentencepiece";
  sentencepiece.vocab_size = 300;
  prepare_dataset(sentencepiece);
  DataConfig data = mix.data;
  data.sources += "," + (mix.dir / "sp").string();
  data.weights += ",1";
  EXPECT_NE(usage_error_message([&] { DataLoader::open(data, mix.model); }).find("data.tokenizer"),
            std::string::npos);
  data = mix.data;
  data.sources += "," + (mix.dir / "none").string();
  data.weights += ",1";
  EXPECT_NE(usage_error_message([&] { DataLoader::open(data, mix.model); }).find("none"),
            std::string::npos);
  data = mix.data;
  data.weights = "0.7";
  EXPECT_NE(usage_error_message([&] {
              DataLoader::open(data, mix.model);
            }).find("names 2 directories but data.weights gives 1"),
            std::string::npos);
  data.weights = "0.7,-1";
  EXPECT_NE(usage_error_message([&] {
              DataLoader::open(data, mix.model);
            }).find("'-1' is not a positive number"),
            std::string::npos);
}

}  // namespace
}  // namespace tessera
