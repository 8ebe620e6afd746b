// The run manifest: what a start records, restarts appended, differences named one per line,
// and the files it is read from.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>

#include "core/error.hpp"
#include "io/manifest/manifest.hpp"

namespace tessera {
namespace {

RunStart example_start(int resumed_from_step) {
  RunStart start;
  start.build = {{"tessera_version", "0.1.0"}, {"git_commit", "abc"}, {"compiler", "GNU 12.2.0"},
                 {"mpi", "Open MPI v4.1.4"},   {"hdf5", "1.10.8"},    {"blas", "oneDNN 3.0.0"},
                 {"cuda_runtime", nullptr}};
  start.config = parse_config("[train]\nseed = 7\n[run]\ndir = \"runs/x\"\n", {});
  start.world_size = 4;
  start.dp = 2, start.tp = 2, start.pp = 1;
  start.hosts = {"node1", "node1", "node2", "node2"};
  start.data = {{"source", "data/x"},
                {"tokenizer", "byte"},
                {"shards",
                 {{{"split", "train"},
                   {"file", "train_000000.bin"},
                   {"tokens", 10},
                   {"fnv1a64", "0123456789abcdef"}}}}};
  start.resumed_from_step = resumed_from_step;
  start.unix_time = 1764165600.0 + resumed_from_step;
  return start;
}

const nlohmann::json kSlurm = {{"job_id", "12"},
                               {"array_job_id", nullptr},
                               {"array_task_id", nullptr},
                               {"restart_count", "1"}};

TEST(Manifest, FirstStartRecordsEverything) {
  const nlohmann::json manifest = record_start(std::nullopt, example_start(0), kSlurm);
  EXPECT_EQ(manifest["manifest_version"], kManifestVersion);
  EXPECT_EQ(manifest["start_time"], "2025-11-26T14:00:00Z");
  EXPECT_EQ(manifest["build"]["mpi"], "Open MPI v4.1.4");
  EXPECT_EQ(manifest["seed"]["train"], 7);
  EXPECT_EQ(manifest["seed"]["data"], 1234);
  EXPECT_EQ(manifest["layout"], (nlohmann::json{{"dp", 2}, {"tp", 2}, {"pp", 1}, {"ranks", 4}}));
  EXPECT_EQ(manifest["hosts"].size(), 4u);
  EXPECT_EQ(manifest["slurm"]["job_id"], "12");
  EXPECT_EQ(manifest["restarts"], nlohmann::json::array());
  const std::string toml = manifest["config"]["toml"];
  EXPECT_EQ(parse_config(toml, {}).train.seed, 7u);
  EXPECT_TRUE(std::regex_match(manifest["config"]["fnv1a64"].get<std::string>(),
                               std::regex("[0-9a-f]{16}")));
  EXPECT_EQ(latest_config(manifest), toml);
}

TEST(Manifest, ResumesAppendToTheHistory) {
  nlohmann::json manifest = record_start(std::nullopt, example_start(0), kSlurm);
  RunStart second = example_start(50);
  second.config.train.stop_after = 80;
  manifest = record_start(manifest, second, kSlurm);
  manifest = record_start(manifest, example_start(80), kSlurm);
  ASSERT_EQ(manifest["restarts"].size(), 2u);
  EXPECT_EQ(manifest["resumed_from_step"], 0);  // the first start is kept as it was
  EXPECT_EQ(manifest["restarts"][0]["resumed_from_step"], 50);
  EXPECT_EQ(manifest["restarts"][1]["resumed_from_step"], 80);
  EXPECT_EQ(parse_config(manifest["restarts"][0]["config"]["toml"], {}).train.stop_after, 80);
  EXPECT_EQ(latest_start(manifest)["resumed_from_step"], 80);
  EXPECT_EQ(parse_config(latest_config(manifest), {}).train.stop_after, 0);
}

TEST(Manifest, SameStartHasNoDifferences) {
  const nlohmann::json start = latest_start(record_start(std::nullopt, example_start(0), kSlurm));
  EXPECT_TRUE(manifest_differences(start, start).empty());
}

TEST(Manifest, EachDifferenceIsOneLine) {
  const nlohmann::json recorded =
      latest_start(record_start(std::nullopt, example_start(0), kSlurm));
  nlohmann::json here = recorded;
  here["build"]["mpi"] = "Open MPI v5.0.3";
  here["layout"]["ranks"] = 8;
  here["data"]["shards"][0]["fnv1a64"] = "fedcba9876543210";
  here["start_time"] = "later";  // not compared
  here["slurm"] = nullptr;       // not compared
  const std::vector<std::string> lines = manifest_differences(recorded, here);
  const std::vector<std::string> expected = {
      "build.mpi: recorded 'Open MPI v4.1.4', here 'Open MPI v5.0.3'",
      "data.shards.train/train_000000.bin.fnv1a64: recorded '0123456789abcdef', here "
      "'fedcba9876543210'",
      "layout.ranks: recorded 4, here 8"};
  EXPECT_EQ(lines, expected);
}

TEST(Manifest, MissingFieldsAndEditedConfigAreDifferences) {
  nlohmann::json recorded = latest_start(record_start(std::nullopt, example_start(0), kSlurm));
  nlohmann::json here = recorded;
  here["build"].erase("cuda_runtime");
  here["hosts"] = {"other"};
  recorded["config"]["toml"] = recorded["config"]["toml"].get<std::string>() + "\n";
  const std::vector<std::string> lines = manifest_differences(recorded, here);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("config.fnv1a64: recorded '", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "build.cuda_runtime: recorded null, here (absent)");
  EXPECT_EQ(lines[2],
            "hosts: recorded [\"node1\",\"node1\",\"node2\",\"node2\"], here [\"other\"]");
}

TEST(Manifest, SlurmJobFromTheEnvironment) {
  std::map<std::string, std::string> values = {
      {"SLURM_JOB_ID", "99"}, {"SLURM_ARRAY_JOB_ID", "98"}, {"SLURM_ARRAY_TASK_ID", "3"}};
  const nlohmann::json slurm = describe_slurm_job([&](const char* name) -> const char* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : it->second.c_str();
  });
  EXPECT_EQ(slurm["job_id"], "99");
  EXPECT_EQ(slurm["array_job_id"], "98");
  EXPECT_EQ(slurm["array_task_id"], "3");
  EXPECT_TRUE(slurm["restart_count"].is_null());
}

TEST(Manifest, BuildDescribesThisBinary) {
  const nlohmann::json build = describe_build();
  EXPECT_EQ(build["tessera_version"], TESSERA_VERSION);
  const std::string commit = build["git_commit"];
  EXPECT_TRUE(commit == "unknown" || std::regex_match(commit, std::regex("[0-9a-f]{40}")))
      << commit;
  EXPECT_FALSE(build["compiler"].get<std::string>().empty());
  EXPECT_NE(build["mpi"].get<std::string>().find("MPI"), std::string::npos) << build["mpi"];
  EXPECT_TRUE(
      std::regex_match(build["hdf5"].get<std::string>(), std::regex("1\\.[0-9]+\\.[0-9]+")));
  EXPECT_EQ(build["blas"].get<std::string>().rfind("oneDNN ", 0), 0u) << build["blas"];
  const nlohmann::json& cuda = build["cuda_runtime"];  // null unless built with CUDA
  EXPECT_TRUE(cuda.is_null() ||
              std::regex_match(cuda.get<std::string>(), std::regex("[0-9]+\\.[0-9]+")))
      << cuda;
  std::cout << "this build: " << build.dump() << "\n";
}

TEST(Manifest, HostnamesOfEveryRank) {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::vector<std::string> hosts = gather_hostnames(MPI_COMM_WORLD);
  ASSERT_EQ(hosts.size(), static_cast<std::size_t>(size));
  char mine[256] = {};
  gethostname(mine, sizeof(mine) - 1);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  EXPECT_EQ(hosts[static_cast<std::size_t>(rank)], mine);
}

class ManifestFiles : public testing::Test {
 protected:
  void SetUp() override {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    dir_ = std::filesystem::temp_directory_path() /
           ("tessera_manifest_" + std::to_string(getpid()) + "_" + std::to_string(rank));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ManifestFiles, WrittenAndLoadedBack) {
  std::string problem;
  EXPECT_FALSE(load_manifest(dir_, problem));
  EXPECT_TRUE(problem.empty());
  const nlohmann::json manifest = record_start(std::nullopt, example_start(0), kSlurm);
  write_manifest(dir_, manifest);
  EXPECT_EQ(load_manifest(dir_, problem), manifest);
  EXPECT_EQ(read_manifest(dir_ / "manifest.json"), manifest);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "manifest.json.tmp"));
}

TEST_F(ManifestFiles, WhatIsNotAManifestIsAUsageError) {
  EXPECT_THROW(read_manifest(dir_ / "missing.json"), UsageError);
  std::ofstream(dir_ / "other.json") << "{\"kind\": \"final\"}\n";
  EXPECT_THROW(read_manifest(dir_ / "other.json"), UsageError);
  std::ofstream(dir_ / "manifest.json") << "not json";
  std::string problem;
  EXPECT_FALSE(load_manifest(dir_, problem));
  EXPECT_NE(problem.find("is not a tessera run manifest"), std::string::npos) << problem;
}

}  // namespace
}  // namespace tessera
