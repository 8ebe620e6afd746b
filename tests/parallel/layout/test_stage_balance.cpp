// Splitting the layers over pipeline stages.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "parallel/layout/stage_balance.hpp"

namespace tessera {
namespace {

ModelConfig model(int layers, int vocab) {
  ModelConfig config;
  config.n_layers = layers;
  config.d_model = 64;
  config.n_heads = 4;
  config.seq_len = 64;
  config.vocab_size = vocab;
  config.ffn_hidden = 256;
  return config;
}

TEST(StageBalance, EveryStageGetsContiguousNonEmptyBlocksCoveringAllLayers) {
  for (int layers : {1, 2, 5, 8, 13, 32}) {
    for (int stages = 1; stages <= layers; ++stages) {
      const std::vector<int> bounds = balance_stages(model(layers, 256), stages);
      ASSERT_EQ(bounds.size(), static_cast<std::size_t>(stages) + 1);
      EXPECT_EQ(bounds.front(), 0);
      EXPECT_EQ(bounds.back(), layers);
      for (int s = 0; s < stages; ++s)
        EXPECT_LT(bounds[s], bounds[s + 1]) << layers << "/" << stages;
    }
  }
}

TEST(StageBalance, EqualBlocksSplitEvenlyWhenTheHeadIsCheap) {
  EXPECT_EQ(balance_stages(model(8, 2), 4), (std::vector<int>{0, 2, 4, 6, 8}));
  EXPECT_EQ(balance_stages(model(8, 2), 8), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(StageBalance, AnExpensiveHeadTakesBlocksOffTheLastStage) {
  // A 50k vocabulary makes the head cost several blocks of d_model 64: the last stage gets
  // fewer blocks than the others.
  const std::vector<int> bounds = balance_stages(model(8, 50000), 2);
  EXPECT_LT(bounds[2] - bounds[1], bounds[1] - bounds[0]);
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

TEST(StageBalance, AnOverrideSetsTheBlocksPerStage) {
  ParallelConfig parallel;
  parallel.stage_layers = "3,3,2";
  EXPECT_EQ(stage_bounds(model(8, 256), parallel, 3), (std::vector<int>{0, 3, 6, 8}));
  parallel.stage_layers = "";
  EXPECT_EQ(stage_bounds(model(8, 2), parallel, 4), balance_stages(model(8, 2), 4));
}

TEST(StageBalance, AnOverrideThatCannotWorkIsAUsageError) {
  ParallelConfig parallel;
  for (const char* bad : {"3,3", "3,3,3", "3,x,2", "3,0,5", "3,,5", "4,4,"}) {
    parallel.stage_layers = bad;
    EXPECT_THROW(stage_bounds(model(8, 256), parallel, 3), UsageError) << bad;
  }
}

}  // namespace
}  // namespace tessera
