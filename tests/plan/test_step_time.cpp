// The step-time model's arithmetic: each part follows the layout the way the model says
// (step_time.hpp), and calibration recovers the rates that produced a set of times.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "parallel/layout/stage_balance.hpp"
#include "plan/allocation_plan.hpp"
#include "plan/calibration.hpp"
#include "plan/step_time.hpp"

namespace tessera {
namespace {

HardwareProfile test_profile() {
  HardwareProfile p;
  p.name = "test";
  p.devices_per_node = 4;
  p.device_memory_bytes = 80.0 * (1 << 30);
  p.peak_tflops = {100.0, 400.0};
  p.achievable_tflops = {50.0, 200.0};
  p.memory_bandwidth_gb_s = 1000.0;
  p.intra_node_gb_s = 100.0;
  p.inter_node_gb_s = 40.0;
  return p;
}

Config config_with(std::vector<std::string> overrides) {
  const std::vector<std::string> model = {
      "model.n_layers=8",      "model.d_model=512",     "model.n_heads=8",     "model.seq_len=512",
      "model.vocab_size=8192", "train.global_batch=32", "train.micro_batch=4", "eval.every=0"};
  overrides.insert(overrides.begin(), model.begin(), model.end());
  return parse_config("", overrides);
}

StepTime time_of(const std::vector<std::string>& overrides, int ranks,
                 const HardwareProfile& profile = test_profile()) {
  const Config config = config_with(overrides);
  return plan_step_time(config, resolve_layout(config, ranks), profile);
}

TEST(StepTime, ComputeIsTheModelFlopsAtTheAchievableRate) {
  const Config config = config_with({});
  const StepTime one = time_of({}, 1);
  const double tokens = 32.0 * 512;
  EXPECT_DOUBLE_EQ(one.compute_flops, tokens * model_flops_per_token(config.model));
  EXPECT_DOUBLE_EQ(one.compute_s, one.compute_flops / 50e12);
  EXPECT_EQ(one.tp_comm_s, 0.0);
  EXPECT_EQ(one.dp_comm_s, 0.0);
  EXPECT_EQ(one.pipeline_bubble_s, 0.0);
  EXPECT_NEAR(one.mfu, 0.5 * one.compute_s / one.total_s, 1e-12);  // achievable / peak
}

TEST(StepTime, DataAndTensorParallelismSplitTheCompute) {
  const StepTime one = time_of({}, 1);
  EXPECT_DOUBLE_EQ(time_of({}, 4).compute_s, one.compute_s / 4);  // dp 4
  const StepTime tp = time_of({"parallel.tp=4"}, 4);
  EXPECT_DOUBLE_EQ(tp.compute_s, one.compute_s / 4);
  // 8 microbatches x (4 per block x 8 blocks + 2) ring all-reduces of [4 x 512, 512] floats.
  EXPECT_DOUBLE_EQ(tp.tp_link_bytes, 8 * 34 * (6.0 / 4) * 4 * 512 * 512 * 4);
  EXPECT_GT(time_of({}, 4).dp_comm_s, 0.0);
}

TEST(StepTime, RecomputationCostsAForwardOrTheAttentionCore) {
  const double none = time_of({}, 1).compute_flops;
  const double full = time_of({"train.recompute=full"}, 1).compute_flops;
  const double selective = time_of({"train.recompute=selective"}, 1).compute_flops;
  const Config config = config_with({});
  EXPECT_DOUBLE_EQ(full - none, 32.0 * 512 * 8 * block_cost(config.model));
  EXPECT_DOUBLE_EQ(selective - none, 32.0 * 512 * 8 * 4.0 * 512 * 512);
}

TEST(StepTime, PipelineBubbleFollowsTheSchedule) {
  const StepTime pipeline = time_of({"parallel.pp=4", "train.micro_batch=1"}, 4);  // m = 32
  EXPECT_NEAR(pipeline.pipeline_bubble_s, 3.0 / 32 * (pipeline.compute_s + pipeline.tp_comm_s),
              1e-15);
  EXPECT_GT(pipeline.pipeline_send_s, 0.0);
}

TEST(StepTime, DataParallelismAcrossNodesUsesTheirShareOfTheNetwork) {
  // 8 ranks, 4 a node: dp 8 crosses nodes, at 40 / 4 GB/s a rank instead of 100 in a node.
  HardwareProfile slow = test_profile();
  const StepTime across = time_of({"train.micro_batch=1", "parallel.zero=1"}, 8, slow);
  slow.devices_per_node = 8;
  const StepTime within = time_of({"train.micro_batch=1", "parallel.zero=1"}, 8, slow);
  EXPECT_NEAR(across.dp_comm_s / within.dp_comm_s, 10.0, 1e-9);
}

TEST(StepTime, NoRateForThePrecisionIsAUsageError) {
  HardwareProfile cpu = test_profile();
  cpu.achievable_tflops.bf16 = 0.0;
  EXPECT_THROW(time_of({"train.precision=bf16"}, 1, cpu), UsageError);
}

TEST(Calibration, RecoversTheRatesThatProducedTheTimes) {
  // Times as a machine with these rates would show them; calibrating a different base from
  // them gives the rates back.
  HardwareProfile truth = test_profile();
  truth.achievable_tflops.fp32 = 31.0;
  truth.intra_node_gb_s = 77.0;
  truth.memory_bandwidth_gb_s = 555.0;
  std::vector<MeasuredRun> runs;
  for (const auto& [settings, ranks] : std::vector<std::pair<std::vector<std::string>, int>>{
           {{}, 1}, {{"parallel.tp=2"}, 2}, {{"parallel.tp=4"}, 4}, {{"parallel.pp=2"}, 2}}) {
    MeasuredRun run;
    run.config = config_with(settings);
    run.ranks = ranks;
    const StepTime t = plan_step_time(run.config, resolve_layout(run.config, ranks), truth);
    run.compute_s = t.compute_s;
    run.tp_comm_s = t.tp_comm_s;
    run.optimizer_s = t.optimizer_s;
    run.step_s = t.total_s;
    runs.push_back(run);
  }
  const HardwareProfile fitted = calibrate_profile(test_profile(), runs);
  EXPECT_NEAR(fitted.achievable_tflops.fp32, 31.0, 1e-9);
  EXPECT_NEAR(fitted.intra_node_gb_s, 77.0, 1e-9);
  EXPECT_NEAR(fitted.memory_bandwidth_gb_s, 555.0, 1e-9);
  EXPECT_EQ(fitted.achievable_tflops.bf16, 200.0);  // not measured: the base's
}

TEST(Calibration, KernelRatesAreTotalFlopsOverTotalTime) {
  // Two bf16 GEMM classes: 1 GFLOP forward at 100 TFLOP/s with the backward at 50, and 3 GFLOP
  // forward at 300 both ways. Time: 10 + 40 us, then 10 + 20 us; FLOPs 3 + 9 GFLOP; 150 TFLOP/s.
  const nlohmann::json measured = {{"format", "tessera-hardware-profile"},
                                   {"version", 1},
                                   {"host", "node042"},
                                   {"device", {{"name", "Some GPU"}}},
                                   {"gemm",
                                    {{{"class", "a"},
                                      {"precision", "bf16"},
                                      {"rows", 500},
                                      {"in_features", 1000},
                                      {"out_features", 1000},
                                      {"forward_tflops", 100.0},
                                      {"backward_tflops", 50.0}},
                                     {{"class", "b"},
                                      {"precision", "bf16"},
                                      {"rows", 1500},
                                      {"in_features", 1000},
                                      {"out_features", 1000},
                                      {"forward_tflops", 300.0},
                                      {"backward_tflops", 300.0}}}}};
  const HardwareProfile fitted = apply_kernel_rates(test_profile(), measured, "k.json");
  EXPECT_NEAR(fitted.achievable_tflops.bf16, 150.0, 1e-9);
  EXPECT_EQ(fitted.achievable_tflops.fp32, test_profile().achievable_tflops.fp32);  // none
  bool cited = false;
  for (const std::string& source : fitted.sources) {
    cited = cited || (source.starts_with("achievable_tflops.bf16: calibrated by tessera "
                                         "calibrate (k.json, Some GPU on node042)"));
  }
  EXPECT_TRUE(cited);
  nlohmann::json other = measured;
  other["format"] = "something-else";
  EXPECT_THROW(apply_kernel_rates(test_profile(), other, "k.json"), UsageError);
  other = measured;
  other["version"] = 2;
  EXPECT_THROW(apply_kernel_rates(test_profile(), other, "k.json"), UsageError);
  other = measured;
  other["gemm"][0]["backward_tflops"] = 0.0;
  EXPECT_THROW(apply_kernel_rates(test_profile(), other, "k.json"), UsageError);
  other = measured;
  other["gemm"][0]["rows"] = "many";  // a JSON type error is bad input too, not an internal one
  EXPECT_THROW(apply_kernel_rates(test_profile(), other, "k.json"), UsageError);
  other = measured;
  other["version"] = 1e30;
  EXPECT_THROW(apply_kernel_rates(test_profile(), other, "k.json"), UsageError);
}

TEST(AllocationPlan, RanksTheLayoutsThatFitAndListsThoseThatDoNot) {
  HardwareProfile small = test_profile();
  small.device_memory_bytes = 1.0 * (1 << 30);
  const AllocationPlan plan = plan_allocation(
      config_with({"model.n_layers=24", "model.d_model=1024"}), small, {.nodes = 2});
  EXPECT_EQ(plan.devices, 8);
  ASSERT_FALSE(plan.fit.empty());
  ASSERT_FALSE(plan.too_big.empty());
  for (std::size_t i = 1; i < plan.fit.size(); ++i) {
    EXPECT_GE(plan.fit[i - 1].time.tokens_per_s, plan.fit[i].time.tokens_per_s);
  }
  for (const PlannedLayout& row : plan.fit) {
    EXPECT_LE(static_cast<double>(row.memory.total()), small.usable_bytes());
    EXPECT_LE(row.candidate.layout.shape.tp, 4);  // inside a node
  }
  for (const PlannedLayout& row : plan.too_big) {
    EXPECT_GT(static_cast<double>(row.memory.total()), small.usable_bytes());
  }
  const PlannedLayout& best = plan.fit.front();
  EXPECT_NEAR(best.days, plan.tokens / best.time.tokens_per_s / 86400, 1e-12);
  EXPECT_NEAR(best.node_hours, best.days * 24 * 2, 1e-9);
  EXPECT_NEAR(plan.tokens, 20 * plan.parameters, 1e-3);
}

TEST(AllocationPlan, AsConfiguredPlansTheConfigurationsOwnLayout) {
  const AllocationPlan plan = plan_allocation(config_with({"parallel.tp=2", "parallel.pp=2"}),
                                              test_profile(), {.as_configured = true});
  ASSERT_EQ(plan.fit.size() + plan.too_big.size(), 1u);
  EXPECT_EQ(plan.fit.front().candidate.layout.shape, (GridShape{.dp = 1, .tp = 2, .pp = 2}));
  EXPECT_THROW(
      plan_allocation(config_with({"parallel.tp=3"}), test_profile(), {.as_configured = true}),
      UsageError);
  EXPECT_THROW(plan_allocation(config_with({}), test_profile(), {.nodes = 0}), UsageError);
  EXPECT_THROW(plan_allocation(config_with({}), test_profile(), {.ranks_per_node = 5}), UsageError);
}

TEST(AllocationPlan, FormatsEveryRowAsCsvAndJson) {
  const AllocationPlan plan = plan_allocation(config_with({}), test_profile(), {});
  const std::string csv = format_plan(plan, "csv", 3);
  EXPECT_EQ(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')),
            1 + plan.fit.size() + plan.too_big.size());
  EXPECT_EQ(csv.rfind("dp,tp,pp,schedule,", 0), 0u);
  EXPECT_NE(format_plan(plan, "md", 3).find("| dp x tp x pp |"), std::string::npos);
  EXPECT_NE(format_plan(plan, "json", 3).find("\"tokens_per_s\""), std::string::npos);
  EXPECT_THROW(format_plan(plan, "xml", 3), UsageError);
}

}  // namespace
}  // namespace tessera
