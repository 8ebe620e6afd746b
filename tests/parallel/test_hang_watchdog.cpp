// HangWatchdog in a job that progresses: heartbeats and answers flow for a while, then finish()
// receives every message still in flight on every rank, and the job goes on (and ends) cleanly.
// A hang itself ends the job, so it is tested from outside: tests/train/test_hang.py.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <thread>

#include "parallel/hang_watchdog.hpp"

namespace tessera {
namespace {

constexpr int kNeverUsed = 99;  // the exit status a hang would give; none must happen

/// Marks progress every few milliseconds for `seconds`, on every rank.
void progress_for(HangWatchdog& watchdog, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (int64_t step = 1; std::chrono::steady_clock::now() < end; ++step) {
    watchdog.mark(step, "working");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(HangWatchdog, FinishDrainsTheMessagesOfAJobThatProgresses) {
  for (int round = 0; round < 2; ++round) {
    // A short timeout: heartbeats every 0.25 s, several per rank before finish().
    HangWatchdog watchdog(MPI_COMM_WORLD, {1.5, kNeverUsed, "test"});
    EXPECT_TRUE(watchdog.watching());
    progress_for(watchdog, 1.2);
    watchdog.finish();
  }
  // The world is still usable afterwards: nothing of the watchdog's is left to match.
  int ranks = 0;
  int one = 1;
  MPI_Allreduce(&one, &ranks, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(ranks, size);
}

TEST(HangWatchdog, ATimeoutOfZeroWatchesNothing) {
  HangWatchdog watchdog(MPI_COMM_WORLD, {0.0, kNeverUsed, "test"});
  EXPECT_FALSE(watchdog.watching());
  watchdog.mark(1, "working");
  watchdog.finish();
}

TEST(HangWatchdog, DestroyedWithoutFinishStopsItsThread) {
  // The path of a run that throws on every rank: no collective, no hang report afterwards.
  {
    HangWatchdog watchdog(MPI_COMM_WORLD, {1.5, kNeverUsed, "test"});
    progress_for(watchdog, 0.6);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // past the timeout: no report
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace tessera
