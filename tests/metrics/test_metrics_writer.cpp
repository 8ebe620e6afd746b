// io/metrics: metrics.jsonl holds whole JSON lines and a second writer appends to the first's.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
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

/// Caps the size of files this process writes (RLIMIT_FSIZE) for its lifetime, as a full disk or
/// a quota would: a write past the cap is cut short, the next fails with EFBIG (SIGXFSZ ignored).
class FileSizeCap {
 public:
  explicit FileSizeCap(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit capped = saved_;
    capped.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &capped);
  }
  ~FileSizeCap() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
  }
  FileSizeCap(const FileSizeCap&) = delete;
  FileSizeCap& operator=(const FileSizeCap&) = delete;

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = SIG_DFL;
};

TEST_F(MetricsWriterTest, ARecordThatDoesNotFitIsLeftOutWholeNotTorn) {
  MetricsWriter writer(dir_);
  const nlohmann::json record = {{"kind", "train"}, {"step", 1}, {"loss", 2.5}};
  const std::size_t line_bytes = record.dump().size() + 1;
  {
    // Room for three records and half of a fourth.
    FileSizeCap cap(static_cast<rlim_t>(3 * line_bytes + line_bytes / 2));
    for (int i = 0; i < 3; ++i) writer.write(record);
    EXPECT_THROW(writer.write(record), UsageError);
    EXPECT_THROW(writer.write(record), UsageError);  // and again: nothing half-written piles up
  }
  EXPECT_EQ(std::filesystem::file_size(dir_ / "metrics.jsonl"), 3 * line_bytes);
  writer.write(record);  // room again (space freed): the file goes on with whole records
  const std::vector<std::string> all = lines();
  ASSERT_EQ(all.size(), 4u);
  for (const std::string& line : all) EXPECT_EQ(nlohmann::json::parse(line), record);
}

}  // namespace
}  // namespace tessera
