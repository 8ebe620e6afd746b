// Requests checked against the configuration's layout, before any script is written.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "jobs/job_request.hpp"

namespace tessera {
namespace {

JobRequest tiny_request(int nodes, int tasks_per_node, std::vector<std::string> overrides = {}) {
  JobRequest request;
  request.config_file = std::filesystem::path(TESSERA_CONFIG_DIR) / "tiny.toml";
  request.overrides = std::move(overrides);
  request.resources.nodes = nodes;
  request.resources.tasks_per_node = tasks_per_node;
  request.resources.time_limit_s = 3600;
  request.tessera = "/opt/tessera/bin/tessera";
  request.work_dir = "/scratch/me";
  return request;
}

/// The UsageError message of `request`'s plan, or "" when it plans fine.
std::string plan_error(const JobRequest& request) {
  try {
    plan_job(request);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

TEST(TimeLimit, ParsesSlurmFormats) {
  EXPECT_EQ(parse_time_limit("00:01:00"), 60);
  EXPECT_EQ(parse_time_limit("1:30:05"), 5405);
  EXPECT_EQ(parse_time_limit("48:00:00"), 48 * 3600);
  EXPECT_EQ(parse_time_limit("2-12:00:00"), (2 * 24 + 12) * 3600);
}

TEST(TimeLimit, RefusesOtherText) {
  for (const char* text : {"90", "1:30", "01:60:00", "00:00:61", "1-24:00:00", "ab:cd:ef", ""}) {
    EXPECT_THROW(parse_time_limit(text), UsageError) << text;
  }
  try {
    parse_time_limit("90");
  } catch (const UsageError& error) {
    EXPECT_STREQ(error.what(),
                 "--time '90' is not HH:MM:SS or D-HH:MM:SS; write e.g. --time 01:30:00");
  }
}

TEST(TimeLimit, FormatsBack) {
  for (int seconds : {60, 3599, 5405, 86399, 86400, 200000}) {
    EXPECT_EQ(parse_time_limit(format_time_limit(seconds)), seconds) << seconds;
  }
  EXPECT_EQ(format_time_limit(5405), "01:30:05");
  EXPECT_EQ(format_time_limit(2 * 86400 + 60), "2-00:01:00");
}

TEST(SignalGrace, DefaultFitsTheTimeLimit) {
  EXPECT_EQ(default_signal_grace(60), 0);  // too short: Slurm may signal a minute early
  EXPECT_EQ(default_signal_grace(599), 0);
  EXPECT_EQ(default_signal_grace(600), 60);
  EXPECT_EQ(default_signal_grace(3000), 300);
  EXPECT_EQ(default_signal_grace(48 * 3600), 300);
  EXPECT_EQ(plan_job(tiny_request(1, 1)).request.signal_grace_s, 300);  // 1 hour
}

TEST(PlanJob, ResolvesTheLayoutOnTheRequestedRanks) {
  // tiny: 4 heads, global_batch 16. 2 nodes x 2 tasks, tp=2 -> dp=2 with micro_batch 8.
  const JobPlan plan =
      plan_job(tiny_request(2, 2, {"parallel.tp=2", "train.micro_batch=8", "run.dir=runs/t"}));
  EXPECT_EQ(plan.shape, (GridShape{.dp = 2, .tp = 2, .pp = 1}));
  EXPECT_EQ(plan.job_name, "tiny");
  EXPECT_EQ(plan.run_dir, "runs/t");
  EXPECT_EQ(plan.log_dir, "runs/t/slurm");
  EXPECT_TRUE(plan.warnings.empty());
}

TEST(PlanJob, RefusesLayoutsThatCannotRunOnTheRanks) {
  // The same checks and words as `tessera train` under mpiexec.
  EXPECT_EQ(plan_error(tiny_request(1, 3, {"parallel.tp=3"}))
                .rfind("parallel.tp = 3 does not divide model.n_heads = 4; pick a divisor of 4", 0),
            0u);
  EXPECT_EQ(plan_error(tiny_request(1, 4, {"parallel.tp=2", "parallel.dp=2"})),
            "train.global_batch = 16 is not divisible by train.micro_batch x dp = 16 x 2; pick a "
            "multiple of 32 or a smaller micro_batch");
  EXPECT_EQ(plan_error(tiny_request(1, 6, {"parallel.tp=2"})),
            "train.global_batch = 16 cannot be shared by dp = 3 replicas (6 ranks / tp x pp = 2); "
            "run on one of these rank counts: 2 (dp 1), 4 (dp 2), 8 (dp 4), 16 (dp 8), or make "
            "train.global_batch a multiple of 3");
  EXPECT_EQ(plan_error(tiny_request(2, 2, {"parallel.dp=1", "parallel.tp=2"})),
            "dp x tp x pp = 1 x 2 x 1 = 2 but the job has 4 ranks; launch 2 ranks or set "
            "parallel.dp = 0 to derive dp from the job size");
  EXPECT_EQ(
      plan_error(tiny_request(1, 4, {"parallel.pp=4", "train.micro_batch=4"})),
      "parallel.pp = 4 exceeds model.n_layers = 2; pick pp <= 2 so every stage holds a layer");
  EXPECT_NE(plan_error(tiny_request(1, 2,
                                    {"parallel.tp=2", "parallel.sequence_parallel=true",
                                     "train.micro_batch=1", "model.seq_len=3"})),
            "");
  EXPECT_NE(plan_error(tiny_request(
                1, 2, {"parallel.pp=2", "parallel.stage_layers=3,1", "model.n_layers=2"})),
            "");
}

TEST(PlanJob, ElasticJobsMustTrainOnEveryNodeCount) {
  // tiny: global batch 16. 4 nodes x 2 ranks at tp 2 run dp 4; on 2 or 3 nodes dp 2 or 3.
  JobRequest request = tiny_request(4, 2, {"parallel.tp=2", "train.micro_batch=4"});
  request.resources.min_nodes = 2;
  EXPECT_EQ(plan_error(request),
            "--min-nodes 2: on 3 node(s) (6 ranks): train.global_batch = 16 cannot be shared by "
            "dp = 3 replicas (6 ranks / tp x pp = 2); run on one of these rank counts: 2 (dp 1), "
            "4 (dp 2), 8 (dp 4), 16 (dp 8), or make train.global_batch a multiple of 3");
  request.overrides.push_back("train.global_batch=24");
  EXPECT_EQ(plan_error(request), "");
  EXPECT_EQ(plan_job(request).shape, (GridShape{.dp = 4, .tp = 2, .pp = 1}));
  request.overrides.push_back("parallel.dp=4");
  EXPECT_EQ(plan_error(request),
            "--min-nodes 2 lets Slurm start the job on fewer nodes, but parallel.dp = 4 is fixed; "
            "set parallel.dp = \"auto\" so that dp follows the nodes");
  request.resources.min_nodes = 5;
  EXPECT_EQ(plan_error(request),
            "--min-nodes 5 is outside 1..--nodes 4; give the fewest nodes the job may start on");
  JobRequest sweep = tiny_request(2, 2);
  sweep.resources.min_nodes = 1;
  sweep.layouts = {"tp=2"};
  EXPECT_NE(plan_error(sweep).find("drop --min-nodes"), std::string::npos);
}

TEST(PlanJob, RefusesImpossibleResources) {
  JobRequest request = tiny_request(0, 1);
  EXPECT_EQ(plan_error(request), "--nodes 0 must be at least 1");
  request = tiny_request(1, 8);
  request.resources.gpus_per_node = 4;
  EXPECT_EQ(plan_error(request),
            "--tasks-per-node 8 with --gpus-per-node 4: tessera runs one rank per GPU; ask for "
            "--tasks-per-node 4");
  request = tiny_request(1, 1);
  request.signal_grace_s = 3600;
  EXPECT_EQ(plan_error(request),
            "--signal-grace 3600 s is not shorter than --time 01:00:00 (3600 s): the job would be "
            "told to stop as it starts; lower --signal-grace or raise --time");
  request = tiny_request(1, 1);
  request.resources.time_limit_s = 30;
  EXPECT_NE(plan_error(request), "");
  request = tiny_request(1, 1, {"train.nonsense=1"});
  EXPECT_NE(plan_error(request).find("train.nonsense"), std::string::npos);
}

TEST(PlanJob, WarnsWhenTensorParallelGroupsCrossNodes) {
  const JobPlan plan = plan_job(tiny_request(2, 1, {"parallel.tp=2"}));
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("cross node boundaries"), std::string::npos);
}

TEST(LayoutVariant, ParsesParallelKeys) {
  const LayoutVariant variant = parse_layout_variant("tp=2,pp=1,schedule=gpipe");
  EXPECT_EQ(variant.label, "tp2-pp1-schedulegpipe");
  EXPECT_EQ(variant.overrides, (std::vector<std::string>{"parallel.tp=2", "parallel.pp=1",
                                                         "parallel.schedule=gpipe"}));
  for (const char* bad : {"", "tp", "tp=", "=2", "heads=2", "tp=2,,pp=1"}) {
    EXPECT_THROW(parse_layout_variant(bad), UsageError) << bad;
  }
}

TEST(PlanJob, SweepsLayoutsEachInItsOwnRunDir) {
  JobRequest request = tiny_request(1, 2, {"train.micro_batch=8", "run.dir=runs/sweep"});
  request.layouts = {"tp=2", "tp=1", "pp=2"};
  const JobPlan plan = plan_job(request);
  ASSERT_EQ(plan.variants.size(), 3u);
  EXPECT_EQ(plan.variants[0].label, "tp2");
  EXPECT_EQ(plan.variants[0].overrides,
            (std::vector<std::string>{"parallel.tp=2", "run.dir=runs/sweep/tp2"}));
  EXPECT_EQ(plan.variant_shapes[0], (GridShape{.dp = 1, .tp = 2, .pp = 1}));
  EXPECT_EQ(plan.variant_shapes[1], (GridShape{.dp = 2, .tp = 1, .pp = 1}));
  EXPECT_EQ(plan.variant_shapes[2], (GridShape{.dp = 1, .tp = 1, .pp = 2}));
  EXPECT_EQ(plan.log_dir, "runs/sweep/slurm");

  request.overrides.push_back("checkpoint.dir=/scratch/ckpt");
  EXPECT_EQ(plan_job(request).variants[1].overrides.back(), "checkpoint.dir=/scratch/ckpt/tp1");

  request.layouts = {"tp=2", "tp=2"};
  EXPECT_NE(plan_error(request).find("given twice"), std::string::npos);
  request.layouts = {"tp=2", "tp=3"};
  EXPECT_EQ(plan_error(request),
            "--layout tp=3: tp x pp = 3 x 1 = 3 does not divide the job's 2 ranks; launch a "
            "multiple of 3 ranks or change parallel.tp / parallel.pp");
}

}  // namespace
}  // namespace tessera
