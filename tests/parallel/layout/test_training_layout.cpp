// The layout module: a configuration resolves to one whole, checked layout (grid, stages,
// microbatches), and every way it cannot run is one UsageError naming the numbers and the fix.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "parallel/layout/training_layout.hpp"

namespace tessera {
namespace {

Config config_with(const std::vector<std::string>& overrides) {
  return parse_config("", overrides);
}

/// The message of the UsageError resolve_layout throws ("no error" if none).
std::string layout_error_of(const std::vector<std::string>& overrides, int world_size) {
  try {
    resolve_layout(config_with(overrides), world_size);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ResolveLayout, ReturnsTheWholeLayout) {
  const TrainingLayout layout = resolve_layout(
      config_with({"model.n_layers=8", "parallel.dp=0", "parallel.tp=2", "parallel.pp=2",
                   "parallel.schedule=interleaved", "parallel.chunks_per_stage=2",
                   "parallel.order=pp-tp-dp", "train.global_batch=16", "train.micro_batch=2"}),
      8);
  EXPECT_EQ(layout.shape, (GridShape{.dp = 2, .tp = 2, .pp = 2}));
  EXPECT_EQ(layout.order.str(), "pp-tp-dp");
  EXPECT_EQ(layout.micro_batch, 2);
  EXPECT_EQ(layout.micro_batches, 4);  // 16 / (2 x dp 2)
  EXPECT_EQ(layout.schedule, PipelineScheduleKind::interleaved);
  EXPECT_EQ(layout.virtual_stages(), 4);
  EXPECT_EQ(layout.stage_bounds.size(), 5u);
  EXPECT_EQ(layout.stage_bounds.front(), 0);
  EXPECT_EQ(layout.stage_bounds.back(), 8);
  const TrainingLayout single = resolve_layout(config_with({}), 1);
  EXPECT_EQ(single.shape, (GridShape{.dp = 1, .tp = 1, .pp = 1}));
  EXPECT_EQ(single.stage_bounds, (std::vector<int>{0, 2}));
  EXPECT_EQ(single.micro_batches, 1);
}

TEST(ResolveLayout, StageLayersOverrideTheBalance) {
  const TrainingLayout layout = resolve_layout(
      config_with({"model.n_layers=8", "parallel.pp=4", "parallel.stage_layers=\"3,1,2,2\""}), 4);
  EXPECT_EQ(layout.stage_bounds, (std::vector<int>{0, 3, 4, 6, 8}));
  EXPECT_NE(
      layout_error_of({"model.n_layers=8", "parallel.pp=2", "parallel.stage_layers=\"3,3\""}, 2)
          .find("parallel.stage_layers = \"3,3\" sums to 6"),
      std::string::npos);
}

TEST(ResolveLayout, ElasticDpKeepsTheGlobalBatch) {
  // 4 nodes x 2 ranks, tp 2: dp 4 runs micro_batch 3 of global 12 once per replica.
  const std::vector<std::string> elastic{"parallel.dp=auto", "parallel.tp=2",
                                         "train.global_batch=12", "train.micro_batch=3"};
  const Config config = config_with(elastic);
  const TrainingLayout four = resolve_layout(config, 8);
  EXPECT_EQ(four.shape, (GridShape{.dp = 4, .tp = 2, .pp = 1}));
  EXPECT_EQ(four.micro_batch, 3);
  EXPECT_EQ(four.micro_batches, 1);
  EXPECT_FALSE(batch_fit_note(config, four));
  // One node lost: dp 3 cannot take microbatches of 3 (9 of 12), so 2 microbatches of 2 each.
  const TrainingLayout three = resolve_layout(config, 6);
  EXPECT_EQ(three.shape, (GridShape{.dp = 3, .tp = 2, .pp = 1}));
  EXPECT_EQ(three.micro_batch, 2);
  EXPECT_EQ(three.micro_batches, 2);
  EXPECT_EQ(three.micro_batch * three.micro_batches * three.shape.dp, 12);
  EXPECT_EQ(run_config(config, three).train.micro_batch, 2);
  EXPECT_EQ(batch_fit_note(config, three).value_or(""),
            "train.micro_batch 3 -> 2: parallel.dp = auto gives dp = 3 on these ranks, and "
            "train.global_batch = 12 is kept (2 microbatches of 2 per replica per step)");
  // 5 replicas cannot share 12 samples: the error names the rank counts that work.
  EXPECT_EQ(layout_error_of(elastic, 10),
            "train.global_batch = 12 cannot be shared by dp = 5 replicas (10 ranks / tp x pp = "
            "2); run on one of these rank counts: 2 (dp 1), 4 (dp 2), 6 (dp 3), 8 (dp 4), 12 (dp "
            "6), 24 (dp 12), or make train.global_batch a multiple of 5");
  // A fixed dp keeps the configured micro_batch and says what does not divide.
  EXPECT_EQ(
      layout_error_of(
          {"parallel.dp=3", "parallel.tp=2", "train.global_batch=12", "train.micro_batch=3"}, 6),
      "train.global_batch = 12 is not divisible by train.micro_batch x dp = 3 x 3; pick a "
      "multiple of 9 or a smaller micro_batch");
  // Sequence parallelism is checked on the microbatch that runs: dp 2 lowers micro_batch 2 to
  // 1, and 1 x 3 rows do not split over tp 2.
  EXPECT_NE(layout_error_of({"parallel.tp=2", "parallel.sequence_parallel=true", "model.seq_len=3",
                             "train.global_batch=6", "train.micro_batch=2"},
                            4)
                .find("splits the 3 rows"),
            std::string::npos);
}

TEST(ResolveLayout, NamesEveryProblemAndItsFix) {
  EXPECT_EQ(layout_error_of({"parallel.chunks_per_stage=2"}, 1),
            "parallel.chunks_per_stage = 2 needs parallel.schedule = \"interleaved\"; set it, or "
            "chunks_per_stage = 1");
  EXPECT_EQ(layout_error_of({"parallel.schedule=interleaved"}, 1),
            "parallel.schedule = \"interleaved\" needs parallel.chunks_per_stage >= 2 virtual "
            "stages per rank; set chunks_per_stage, or use schedule = \"1f1b\"");
  // Sequence parallelism splits micro_batch x seq_len rows over tp: 3 x 7 = 21 over 2.
  const std::vector<std::string> odd_rows{"model.seq_len=7", "train.micro_batch=3",
                                          "train.global_batch=3", "parallel.tp=2",
                                          "parallel.sequence_parallel=true"};
  EXPECT_EQ(layout_error_of(odd_rows, 2),
            "parallel.sequence_parallel splits the 21 rows of a microbatch (train.micro_batch * "
            "model.seq_len) over parallel.tp = 2 ranks, which does not divide them");
  std::vector<std::string> off = odd_rows;
  off.back() = "parallel.sequence_parallel=false";
  EXPECT_EQ(layout_error_of(off, 2), "no error");
  EXPECT_EQ(layout_error_of({"parallel.tp=3"}, 3),
            "parallel.tp = 3 does not divide model.n_heads = 4; pick a divisor of 4 (1, 2, 4)");
  EXPECT_NE(layout_error_of({"parallel.dp=2"}, 3), "no error");
}

std::string usage_error_of(int world_size, GridShape shape, const LayoutDimensions& dims) {
  try {
    validate_layout(world_size, shape, dims);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

LayoutDimensions gpt2_small() {
  return {.n_heads = 16,
          .vocab_size = 50304,
          .ffn_hidden = 4096,
          .n_layers = 4,
          .global_batch = 64,
          .micro_batch = 4,
          .chunks_per_stage = 1};
}

TEST(ValidateLayout, AcceptsWorkingLayoutsAndDerivesDp) {
  EXPECT_EQ(validate_layout(8, {.dp = 2, .tp = 2, .pp = 2}, gpt2_small()),
            (GridShape{.dp = 2, .tp = 2, .pp = 2}));
  EXPECT_EQ(validate_layout(16, {.dp = 0, .tp = 4, .pp = 1}, gpt2_small()),
            (GridShape{.dp = 4, .tp = 4, .pp = 1}));
  EXPECT_EQ(validate_layout(1, {.dp = 0, .tp = 1, .pp = 1}, gpt2_small()),
            (GridShape{.dp = 1, .tp = 1, .pp = 1}));
}

TEST(ValidateLayout, NamesTheNumbersAndTheFix) {
  const LayoutDimensions dims = gpt2_small();
  EXPECT_EQ(usage_error_of(6, {.dp = 2, .tp = 3, .pp = 1}, dims),
            "parallel.tp = 3 does not divide model.n_heads = 16; pick a divisor of 16 "
            "(1, 2, 4, 8, 16)");
  EXPECT_EQ(usage_error_of(6, {.dp = 2, .tp = 2, .pp = 2}, dims),
            "dp x tp x pp = 2 x 2 x 2 = 8 but the job has 6 ranks; launch 8 ranks or set "
            "parallel.dp = 0 to derive dp from the job size");
  EXPECT_EQ(usage_error_of(6, {.dp = 0, .tp = 4, .pp = 1}, dims),
            "tp x pp = 4 x 1 = 4 does not divide the job's 6 ranks; launch a multiple of 4 ranks "
            "or change parallel.tp / parallel.pp");
  EXPECT_EQ(usage_error_of(5, {.dp = 1, .tp = 1, .pp = 5}, dims),
            "parallel.pp = 5 exceeds model.n_layers = 4; pick pp <= 4 so every stage holds a "
            "layer");
  LayoutDimensions small_batch = dims;
  small_batch.global_batch = 8;
  EXPECT_EQ(usage_error_of(4, {.dp = 4, .tp = 1, .pp = 1}, small_batch),
            "train.global_batch = 8 is not divisible by train.micro_batch x dp = 4 x 4; pick a "
            "multiple of 16 or a smaller micro_batch");
  LayoutDimensions odd_ffn = dims;
  odd_ffn.ffn_hidden = 4100;
  EXPECT_NE(usage_error_of(8, {.dp = 1, .tp = 8, .pp = 1}, odd_ffn).find("model.ffn_hidden = 4100"),
            std::string::npos);
  LayoutDimensions odd_vocab = dims;
  odd_vocab.vocab_size = 50257;
  EXPECT_NE(usage_error_of(2, {.dp = 1, .tp = 2, .pp = 1}, odd_vocab).find("model.vocab_size"),
            std::string::npos);
  LayoutDimensions interleaved = dims;
  interleaved.chunks_per_stage = 2;
  EXPECT_EQ(usage_error_of(4, {.dp = 1, .tp = 1, .pp = 4}, interleaved),
            "parallel.pp x chunks_per_stage = 4 x 2 = 8 exceeds model.n_layers = 4; every "
            "virtual stage needs a layer: lower pp or chunks_per_stage");
  EXPECT_NE(usage_error_of(4, {.dp = 1, .tp = 0, .pp = 4}, dims), "no error");
}

}  // namespace
}  // namespace tessera
