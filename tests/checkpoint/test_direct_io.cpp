// The pieces under the checkpoint's raw writes, without MPI: a block's byte runs, the dealing of
// rows among writers, and DirectWriter / DirectReader on a disk (O_DIRECT) and on tmpfs (which
// refuses it): bytes that neighbours' runs share pages with, files that end early.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint/direct_io.hpp"
#include "io/checkpoint/row_exchange.hpp"

namespace tessera::checkpoint_detail {
namespace {

std::vector<ByteRun> runs_of(uint64_t storage, const std::vector<int64_t>& shape,
                             const std::vector<int64_t>& local, const std::vector<int64_t>& at) {
  std::vector<ByteRun> runs;
  for_each_run(storage, shape, local, at, [&](const ByteRun& run) { runs.push_back(run); });
  return runs;
}

void expect_run(const ByteRun& run, uint64_t file_offset, uint64_t buffer_offset, uint64_t bytes) {
  EXPECT_EQ(run.file_offset, file_offset);
  EXPECT_EQ(run.buffer_offset, buffer_offset);
  EXPECT_EQ(run.bytes, bytes);
}

TEST(ForEachRun, ARangeOfWholeRowsIsOneRun) {
  const auto runs = runs_of(4096, {10, 6}, {3, 6}, {4, 0});
  ASSERT_EQ(runs.size(), 1u);
  expect_run(runs[0], 4096 + 4 * 6 * 4, 0, 3 * 6 * 4);
}

TEST(ForEachRun, AColumnBlockIsARunPerRow) {
  const auto runs = runs_of(0, {4, 6}, {4, 2}, {0, 3});
  ASSERT_EQ(runs.size(), 4u);
  for (uint64_t row = 0; row < 4; ++row) expect_run(runs[row], (row * 6 + 3) * 4, row * 8, 8);
}

TEST(ForEachRun, AMiddleDimensionSplitRunsOverTheLastWhole) {
  // [2, 5, 3] block [2, 2, 3] at [0, 1, 0]: per first index, rows 1-2 of the middle dimension.
  const auto runs = runs_of(100, {2, 5, 3}, {2, 2, 3}, {0, 1, 0});
  ASSERT_EQ(runs.size(), 2u);
  expect_run(runs[0], 100 + 3 * 4, 0, 6 * 4);
  expect_run(runs[1], 100 + (15 + 3) * 4, 24, 6 * 4);
}

TEST(ForEachRun, ScalarsAndEmptyBlocks) {
  const auto scalar = runs_of(8, {}, {}, {});
  ASSERT_EQ(scalar.size(), 1u);
  expect_run(scalar[0], 8, 0, 4);
  EXPECT_TRUE(runs_of(0, {4, 6}, {0, 6}, {4, 0}).empty());
}

PlannedDataset tensor_of(std::vector<int64_t> shape, std::vector<OwnedBlock> blocks) {
  std::vector<std::pair<int, int>> hashers;  // the blocks tile the tensor
  for (const OwnedBlock& block : blocks) hashers.emplace_back(block.rank, block.index);
  return {std::string("t"), std::move(shape), std::move(hashers), {}, std::move(blocks)};
}

TEST(RowExchange, OnlyTilingBlocksThatAreNotWholeRowsAreRegrouped) {
  PlannedDataset partial = tensor_of({8, 6}, {{0, 0, {{0, 0}, {8, 3}}}});
  partial.hashers.clear();  // a read of some columns only
  EXPECT_FALSE(deals_rows(partial));
  EXPECT_FALSE(deals_rows(tensor_of({8, 6}, {{0, 0, {{0, 0}, {4, 6}}}, {1, 0, {{4, 0}, {4, 6}}}})));
  EXPECT_TRUE(deals_rows(tensor_of({8, 6}, {{0, 0, {{0, 0}, {8, 3}}}, {1, 0, {{0, 3}, {8, 3}}}})));
  EXPECT_FALSE(deals_rows(tensor_of({12}, {{0, 0, {{0}, {6}}}, {1, 0, {{6}, {6}}}})));
}

TEST(RowExchange, RowsAreDealtInOrderAnEqualShareEach) {
  const auto slices = deal_rows(tensor_of(
      {7, 6}, {{2, 0, {{0, 0}, {7, 2}}}, {0, 0, {{0, 2}, {7, 2}}}, {1, 0, {{0, 4}, {7, 2}}}}));
  ASSERT_EQ(slices.size(), 3u);
  int64_t next = 0;
  for (std::size_t j = 0; j < 3; ++j) {
    EXPECT_EQ(slices[j].first_row, next);
    EXPECT_GE(slices[j].rows, 2);
    next += slices[j].rows;
  }
  EXPECT_EQ(next, 7);
  EXPECT_EQ(slices[0].rank, 2);
  EXPECT_EQ(slices[2].rank, 1);
}

/// A fresh empty file under `directory`, removed with the object.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& directory) {
    std::string pattern = directory + "/tessera_direct_XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp in " + directory);
    close(fd);
    path_ = pattern;
  }
  ~ScratchFile() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool takes_o_direct(const std::filesystem::path& file) {
  const int fd = open(file.c_str(), O_RDONLY | O_DIRECT);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

std::vector<char> pattern_bytes(std::size_t count) {
  std::vector<char> bytes(count);
  for (std::size_t i = 0; i < count; ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 251);
  return bytes;
}

/// Three runs written out of order, side by side, with ends mid-page: a long run whose pages
/// go direct, a short one between it and the next that shares both its pages, then read back
/// whole and in pieces.
void expect_runs_round_trip(const std::string& directory) {
  ScratchFile file(directory);
  const std::vector<char> bytes = pattern_bytes(30 * 1000 * 1000 + 123);
  const std::vector<ByteRun> runs = {
      {1000, 1000, 17500 * 1000},
      {17501 * 1000, 17501 * 1000, 777},
      {17501 * 1000 + 777, 17501 * 1000 + 777, bytes.size() - 17501 * 1000 - 777}};
  {
    DirectWriter writer(file.path());
    for (const std::size_t r : {2u, 0u, 1u}) writer.write(runs[r], bytes.data());
    writer.finish();
  }
  std::vector<char> back(bytes.size(), 0);
  std::vector<char> middle(10 * 1000 * 1000);
  DirectReader reader(file.path());
  EXPECT_EQ(reader.direct(), takes_o_direct(file.path()));
  for (const ByteRun& run : runs) reader.read(run, back.data());
  reader.read({1234567, 0, middle.size()}, middle.data());
  reader.finish();
  EXPECT_TRUE(std::equal(bytes.begin() + 1000, bytes.end(), back.begin() + 1000));
  EXPECT_TRUE(std::equal(middle.begin(), middle.end(), bytes.begin() + 1234567));
  const auto read_now = [&](const ByteRun& run) {
    reader.read(run, back.data());
    reader.finish();
  };
  EXPECT_THROW(read_now({bytes.size() - 100000, 0, 100001}), std::runtime_error);
  // An offset from a damaged file's metadata near 2^64: refused, not wrapped around.
  EXPECT_THROW(read_now({~uint64_t{0} - 1000, 0, 100000}), std::runtime_error);
  // A failure is reported once: the reader goes on.
  read_now(runs[1]);
}

TEST(DirectIo, RunsRoundTripOnTheTestDirectory) {
  expect_runs_round_trip(std::filesystem::temp_directory_path().string());
}

TEST(DirectIo, RunsRoundTripOnTmpfsThroughThePageCache) {
  if (access("/dev/shm", W_OK) != 0) GTEST_SKIP() << "no writable /dev/shm";
  expect_runs_round_trip("/dev/shm");
}

TEST(StagingPool, RunsJobsInOrderWithAlignedBuffersAndReportsTheFirstFailureOnce) {
  StagingPool pool;
  pool.drain();  // nothing queued: no threads, nothing to wait for
  std::vector<int> ran;
  std::mutex guard;
  for (int i = 0; i < 20; ++i) {
    pool.submit([&, i](char* staging) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(staging) % kDirectAlignment, 0u);
      std::fill_n(staging, StagingPool::kStagingBytes, static_cast<char>(i));  // all of it
      const std::lock_guard lock(guard);
      ran.push_back(i);
    });
  }
  pool.drain();
  EXPECT_EQ(ran.size(), 20u);
  ran.clear();
  pool.submit([](char*) { throw std::runtime_error("first"); });
  pool.submit([](char*) { throw std::runtime_error("second"); });
  pool.submit([&](char*) { ran.push_back(0); });
  try {
    pool.drain();
    FAIL() << "a failed job was not reported";
  } catch (const std::runtime_error& error) {
    // Two workers may both have started a failing job; either way one failure is reported.
    EXPECT_TRUE(std::string(error.what()) == "first" || std::string(error.what()) == "second");
  }
  EXPECT_TRUE(ran.empty()) << "a job queued after a failure ran";
  pool.submit([&](char*) { ran.push_back(1); });
  pool.drain();  // the failure was reported: jobs run again
  EXPECT_EQ(ran, std::vector<int>{1});
}

TEST(StagingPool, WaitForReturnsOnceEveryJobUpToItsTicketRanWhileLaterOnesGoOn) {
  StagingPool pool;
  EXPECT_EQ(pool.submitted(), 0u);
  pool.wait_for(0);  // nothing queued: returns at once
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> finished{0};
  EXPECT_EQ(pool.submit([&](char*) {
    released.wait();
    ++finished;
  }),
            1u);
  // The second worker runs later jobs while the first is held: they finish out of order.
  std::uint64_t last = 0;
  for (int i = 0; i < 3; ++i) last = pool.submit([&](char*) { ++finished; });
  EXPECT_EQ(last, 4u);
  EXPECT_EQ(pool.submitted(), 4u);
  std::atomic<bool> waited{false};
  std::thread waiter([&] {
    pool.wait_for(2);
    waited = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(waited) << "wait_for(2) returned while job 1 was still running";
  release.set_value();
  waiter.join();
  EXPECT_GE(finished.load(), 2);
  pool.wait_for(last);
  EXPECT_EQ(finished.load(), 4);
  // Jobs skipped after a failure count as finished: waiting for them does not hang. (Two
  // failing jobs keep both workers busy until the failure is known.)
  pool.submit([](char*) { throw std::runtime_error("failed"); });
  pool.submit([](char*) { throw std::runtime_error("failed"); });
  last = pool.submit([&](char*) { ++finished; });
  pool.wait_for(last);
  EXPECT_THROW(pool.drain(), std::runtime_error);
  EXPECT_EQ(finished.load(), 4) << "a job queued after a failure ran";
}

TEST(DirectIo, AFileThatCannotBeOpenedSaysWhich) {
  try {
    DirectWriter writer("/nonexistent-directory/file.h5");
    FAIL() << "opened a file in a missing directory";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent-directory/file.h5"), std::string::npos);
  }
}

}  // namespace
}  // namespace tessera::checkpoint_detail
