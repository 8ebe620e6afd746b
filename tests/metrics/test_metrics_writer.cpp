// io/metrics: metrics.jsonl holds whole JSON lines and a second writer appends to the first's.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/metrics/metrics.hpp"

namespace tessera {
namespace {

class MetricsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tessera_metrics_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> lines() const {
    std::ifstream in(dir_ / "metrics.jsonl");
    std::vector<std::string> result;
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }

  std::filesystem::path dir_;
};

TEST_F(MetricsWriterTest, WritesOneValidObjectPerLineAndAppendsAcrossWriters) {
  {
    MetricsWriter writer(dir_ / "nested");  // creates the run directory
    EXPECT_EQ(writer.path(), dir_ / "nested" / "metrics.jsonl");
  }
  dir_ /= "nested";
  {
    MetricsWriter first(dir_);
    first.write({{"kind", "run"}, {"loss_floor", 1.25}});
    first.write(to_json(StepReport{.step = 1, .total_steps = 3, .loss = 5.5}));
    EXPECT_EQ(lines().size(), 2u) << "each line is on disk as soon as write returns";
  }
  MetricsWriter resumed(dir_);
  resumed.write({{"kind", "eval"}, {"step", 2}, {"val_loss", 4.0}, {"note", "a\nb"}});
  auto text = lines();
  ASSERT_EQ(text.size(), 3u);
  std::vector<nlohmann::json> records;
  for (const auto& line : text) records.push_back(nlohmann::json::parse(line));
  EXPECT_EQ(records[0]["kind"], "run");
  EXPECT_EQ(records[1]["kind"], "train");
  EXPECT_EQ(records[1]["step"], 1);
  EXPECT_DOUBLE_EQ(records[1]["loss"].get<double>(), 5.5);
  EXPECT_EQ(records[2]["note"], "a\nb");  // escaped, still one line
}

TEST_F(MetricsWriterTest, TornLastLineIsClosedBeforeAppending) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "metrics.jsonl") << "{\"kind\":\"train\",\"step\":1}\n{\"kind\":\"tr";
  MetricsWriter writer(dir_);
  writer.write({{"kind", "run"}});
  auto text = lines();
  ASSERT_EQ(text.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(text[2])["kind"], "run");
}

TEST_F(MetricsWriterTest, RejectsNonObjectsAndUnwritableDirectories) {
  MetricsWriter writer(dir_);
  EXPECT_THROW(writer.write(nlohmann::json::array({1, 2})), InternalError);
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THROW(MetricsWriter(dir_ / "file"), UsageError);  // run.dir is a regular file
}

}  // namespace
}  // namespace tessera
