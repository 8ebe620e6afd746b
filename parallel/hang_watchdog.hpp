// A job whose ranks stop making progress (one rank stopped or stuck, the others waiting for it
// in a collective) ends with a line naming the stuck ranks and what they were doing, instead of
// waiting silently until the allocation runs out.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tessera {

/// What one rank was last doing, as the watchdog knows it.
struct RankProgress {
  int rank = 0;
  int64_t step = 0;
  std::string operation;  ///< "" before the rank's first mark
  /// Operations the rank has begun. Every rank begins the same ones in the same order, so a rank
  /// with fewer is behind the others: they wait for it.
  int64_t marks = 0;
  double idle_s = 0.0;    ///< seconds since the rank began that operation
  double silent_s = 0.0;  ///< seconds since the rank's watchdog was last heard from
  std::string host;       ///< the node it runs on ("" when unknown)
  /// No heartbeat of it has arrived (it stopped within the first heartbeat period, or its
  /// messages cannot get through): what it does is unknown.
  bool never_heard = false;
};

/// The line that reports a hang, from every rank's progress. Ranks silent for longer than
/// `silent_after_s` have stopped responding (a stopped process, a node gone) and are named as
/// stuck, with their nodes; when every rank still answers, the ranks furthest behind (fewest
/// marks) are. The others are listed as waiting, grouped by what they wait in. `setting` names
/// the timeout's setting.
std::string describe_hang(const std::vector<RankProgress>& ranks, double timeout_s,
                          double silent_after_s, const std::string& setting);

struct HangWatchdogOptions {
  double timeout_s = 0.0;  ///< no progress anywhere for this long is a hang; <= 0 watches nothing
  int exit_status = 1;     ///< the job's exit status after a hang
  std::string setting;     ///< where users change the timeout, for the message
};

/// Watches this rank's progress from a thread of its own and, with the other ranks' watchdogs,
/// the whole job's: every few seconds each rank tells rank 0 what it is doing and rank 0 answers
/// every rank. When no rank has marked progress for the timeout, rank 0 prints describe_hang's
/// line and ends the job (MPI_Abort). When rank 0 itself stops answering, rank 1 reports (the
/// other ranks a timeout later, should rank 1 be gone too). Needs MPI_THREAD_MULTIPLE; without
/// it, it watches nothing (a job of one rank is watched without MPI).
class HangWatchdog {
 public:
  /// Collective over `comm` (a duplicate is used).
  HangWatchdog(MPI_Comm comm, const HangWatchdogOptions& options);
  /// Stops watching; without finish(), messages still in flight are left to MPI_Finalize.
  ~HangWatchdog();
  HangWatchdog(const HangWatchdog&) = delete;
  HangWatchdog& operator=(const HangWatchdog&) = delete;

  /// This rank now does `operation` (a string literal: it is kept by pointer) of `step`. Every
  /// rank must mark the same operations in the same order (the hang report compares counts).
  void mark(int64_t step, const char* operation) noexcept;

  /// Collective: stops watching on every rank and receives every message still in flight.
  void finish();

  /// Whether a thread watches (a positive timeout, and MPI_THREAD_MULTIPLE for several ranks).
  bool watching() const;

 private:
  class Watcher;
  std::unique_ptr<Watcher> watcher_;
};

}  // namespace tessera
