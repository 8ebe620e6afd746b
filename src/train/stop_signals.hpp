// Stop requests from outside the job: SIGUSR1 (what `sbatch --signal=USR1@120` or
// `scancel --signal=USR1` sends ahead of the time limit) and SIGTERM (what Slurm sends at the
// time limit, at preemption and at `scancel`, KillWait seconds before SIGKILL).
//
// The signals are taken synchronously: every thread blocks them and one waiter thread takes
// them with sigwait and records them, so no signal ever interrupts the training's own threads or
// the libraries' (an asynchronous handler interrupting the step corrupted the heap in about one
// run in four here). The training loop looks at the record at each step boundary, agrees with
// the other ranks, saves a checkpoint and exits with kStoppedEarlyExit. A process that cannot get
// to a step boundary (stuck in I/O, say) would never act on it: a second SIGTERM, a second or
// more after the first (a launcher's duplicate comes at once), ends the process on the spot with
// a line on stderr and status 128 + SIGTERM, no checkpoint.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

namespace tessera {

/// Blocks SIGUSR1 and SIGTERM in the calling thread, so that every thread started afterwards
/// (MPI's progress and PMIx threads, OpenMP's team) inherits the block. `tessera` calls it first
/// thing in main, before MPI starts its threads.
void block_stop_signals_in_new_threads();

/// Takes SIGUSR1 and SIGTERM for its lifetime: blocks them in the calling thread and records
/// them from a waiter thread; a handler records them too, for threads that were started before
/// the block (in test programs). Restores the previous handlers and mask when destroyed. One
/// instance at a time (it owns the process-wide signal dispositions).
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// The number of the last stop signal received since construction, or 0.
  int received() const;

 private:
  void wait_for_signals();

  struct sigaction previous_usr1_ {};
  struct sigaction previous_term_ {};
  sigset_t previous_mask_{};
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point first_term_{};  ///< the waiter thread's own record
  bool term_seen_ = false;
  std::thread waiter_;
};

/// "SIGUSR1", "SIGTERM", or "a signal" for any other.
const char* signal_name(int signal);

}  // namespace tessera
