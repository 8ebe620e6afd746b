// The memory plan's arithmetic by part (tests/plan/test_memory_plan.py checks its totals
// against the trainer's allocator on 16 layouts) and the layouts the planner enumerates.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plan/layout_candidates.hpp"
#include "plan/memory_plan.hpp"

namespace tessera {
namespace {

// bench-cpu's shape: 6 layers of width 384 (6 heads), seq 256, vocab 8192.
const std::vector<std::string> kModel = {
    "model.n_layers=6",      "model.d_model=384",    "model.n_heads=6",     "model.seq_len=256",
    "model.vocab_size=8192", "train.global_batch=8", "train.micro_batch=8", "eval.every=0"};

Config config_with(std::vector<std::string> overrides) {
  overrides.insert(overrides.begin(), kModel.begin(), kModel.end());
  return parse_config("", overrides);
}

StageMemory plan_of(const std::vector<std::string>& overrides, int world_size,
                    BackendKind backend = BackendKind::cpu) {
  const Config config = config_with(overrides);
  return plan_memory(config, resolve_layout(config, world_size), memory_traits(backend, 1)).peak();
}

TEST(MemoryPlan, ParametersOfGpt2CountEveryTensorOnce) {
  // 12 d^2 + 13 d per block, token and position embeddings, the final norm (head tied).
  const std::size_t d = 384, blocks = 6 * (12 * d * d + 13 * d);
  const std::size_t count = blocks + 8192 * d + 256 * d + 2 * d;
  const StageMemory one = plan_of({}, 1);
  EXPECT_EQ(one.parameters, 4 * count);
  EXPECT_EQ(one.gradients, 4 * count);
  EXPECT_EQ(one.optimizer_state, 8 * count);  // AdamW's m and v
}

TEST(MemoryPlan, ZeroShardsTheOptimizerStateOverDataParallelRanks) {
  const StageMemory whole = plan_of({"train.micro_batch=2"}, 4);
  const StageMemory sharded = plan_of({"train.micro_batch=2", "parallel.zero=1"}, 4);
  const std::size_t padded = (whole.parameters / 4 + 3) / 4 * 4;  // floats, to dp
  EXPECT_EQ(sharded.optimizer_state, 2 * 4 * (padded / 4));
  // ...and keeps the reduced gradient shard.
  EXPECT_EQ(sharded.communication_buffers, 4 * (padded / 4));
  EXPECT_EQ(sharded.activations, whole.activations);
}

TEST(MemoryPlan, RecomputationKeepsLessActivationMemory) {
  const std::size_t none = plan_of({}, 1).activations;
  const std::size_t selective = plan_of({"train.recompute=selective"}, 1).activations;
  const std::size_t full = plan_of({"train.recompute=full"}, 1).activations;
  EXPECT_GT(none, selective);
  EXPECT_GT(selective, full);
  // Selective drops 5 of the 6 blocks' probabilities (one shared buffer stays): 5 x 8 x 6 x 256^2.
  EXPECT_EQ(none - selective, 5u * 8 * 6 * 256 * 256 * 4);
}

TEST(MemoryPlan, PipelineSchedulesHoldTheirMicrobatchesInFlight) {
  const std::vector<std::string> pipeline = {"parallel.pp=2", "train.micro_batch=1"};
  std::vector<std::string> gpipe = pipeline;
  gpipe.push_back("parallel.schedule=gpipe");
  const Config config = config_with(pipeline);
  const MemoryPlan one_f_one_b = plan_memory(config, resolve_layout(config, 2), {});
  // 1F1B: stage 0 holds 2 microbatches, GPipe all 8.
  EXPECT_LT(one_f_one_b.stages[0].activations, plan_of(gpipe, 2).activations);
  EXPECT_EQ(one_f_one_b.stages.size(), 2u);
}

TEST(MemoryPlan, FusedAttentionKeepsRowStatisticsNotProbabilities) {
  const std::size_t cpu = plan_of({}, 1, BackendKind::cpu).activations;
  const std::size_t cuda = plan_of({}, 1, BackendKind::cuda).activations;
  EXPECT_EQ(cpu - cuda, 6u * 8 * 6 * (256 * 256 - 256) * 4);
}

TEST(LayoutCandidates, EveryCandidateResolvesAndTheBaseIsAmongThem) {
  const Config base =
      config_with({"parallel.tp=2", "parallel.sequence_parallel=true", "train.micro_batch=2"});
  const std::vector<LayoutCandidate> all = enumerate_layouts(base, 4, {.max_tp = 2});
  ASSERT_FALSE(all.empty());
  bool base_found = false;
  for (const LayoutCandidate& candidate : all) {
    EXPECT_LE(candidate.layout.shape.tp, 2);
    EXPECT_EQ(candidate.layout.shape.dp * candidate.layout.shape.tp * candidate.layout.shape.pp, 4);
    EXPECT_NO_THROW(resolve_layout(candidate.config, 4));
    base_found = base_found || candidate.config == base;
  }
  EXPECT_TRUE(base_found);
  // 6 heads: tp 4 never divides them, so no candidate has it even with max_tp 4.
  for (const LayoutCandidate& candidate : enumerate_layouts(base, 4, {.max_tp = 4})) {
    EXPECT_NE(candidate.layout.shape.tp, 4);
  }
}

TEST(LayoutCandidates, FixedSettingsStayTheBase) {
  const Config base = config_with({"train.recompute=full"});
  const std::vector<LayoutCandidate> all = enumerate_layouts(base, 2,
                                                             {.vary_micro_batch = false,
                                                              .vary_recompute = false,
                                                              .vary_zero = false,
                                                              .vary_schedule = false});
  // On 2 ranks dp 2 cannot take micro_batch 8 of a global batch of 8: tp 2 (6 heads, 1536 MLP
  // and 8192 vocabulary divide) and pp 2 remain.
  ASSERT_EQ(all.size(), 2u);
  for (const LayoutCandidate& candidate : all) {
    EXPECT_EQ(candidate.config.train.recompute, Recompute::full);
    EXPECT_EQ(candidate.config.train.micro_batch, 8);
  }
}

}  // namespace
}  // namespace tessera
