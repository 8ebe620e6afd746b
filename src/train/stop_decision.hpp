// When a training run stops before its last step: a stop signal on any rank, or too little
// time left before the job's end for another step and a checkpoint. Either way the run saves a
// checkpoint and `tessera train` exits with kStoppedEarlyExit so that the job is requeued.
//
// Every rank measures its own readings; one all-reduce (maximum of each field) at the step
// boundary makes them the same everywhere, and decide_stop is a pure function of the agreed
// readings, so all ranks take the same decision without further messages.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace tessera {

/// What one rank knows at a step boundary. agree_at_boundary replaces each field by its
/// maximum over ranks.
struct BoundaryReadings {
  double since_checkpoint_s = 0.0;  ///< wall time since the last save (checkpoint.every_minutes)
  double signal = 0.0;              ///< number of a stop signal received, 0 for none
  double step_s = 0.0;              ///< longest step so far: training, logging and evaluation
  double checkpoint_s = 0.0;        ///< longest save so far, or the estimate before the first
  double now = 0.0;                 ///< UNIX time in seconds
};

/// The step boundary's one collective: an MPI_Allreduce (MPI_MAX) of the five fields.
BoundaryReadings agree_at_boundary(MPI_Comm world, const BoundaryReadings& mine);

enum class StopReason { none, signal, time_limit };

struct StopDecision {
  StopReason reason = StopReason::none;
  int signal = 0;           ///< with StopReason::signal
  std::string explanation;  ///< "stopping: received SIGUSR1", "stopping before the time limit: ..."
};

/// Stop when a signal arrived, or when now + step_s + checkpoint_s + margin_s would pass
/// `end_time` (UNIX seconds; none: no time limit). A signal wins over the time limit.
StopDecision decide_stop(const BoundaryReadings& agreed, std::optional<double> end_time,
                         double margin_s);

/// Seconds since the UNIX epoch, from the system clock.
double unix_time_now();

/// The readings a rank contributes: the longest step and save it measured, with an injectable
/// clock (tests drive it by hand).
class StopMonitor {
 public:
  using Clock = std::function<double()>;  ///< UNIX seconds

  /// `checkpoint_estimate_s` stands for the save time until a save has been measured.
  StopMonitor(std::optional<double> end_time, double margin_s, double checkpoint_estimate_s,
              Clock clock = unix_time_now);

  void step_took(double seconds);
  /// The first measured save replaces the estimate; later ones raise it to their maximum.
  void save_took(double seconds);

  BoundaryReadings readings(int signal, double since_checkpoint_s) const;
  StopDecision decide(const BoundaryReadings& agreed) const;
  std::optional<double> end_time() const { return end_time_; }

 private:
  std::optional<double> end_time_;
  double margin_s_;
  double step_s_ = 0.0;
  double checkpoint_s_;
  bool save_measured_ = false;
  Clock clock_;
};

/// Where the job's end time comes from, and what it is.
struct JobEndTime {
  std::optional<double> unix_time;
  std::string source;  ///< "run.deadline", "SLURM_JOB_END_TIME", "squeue", or "none"
};

/// Looks up an environment variable (nullptr when unset); std::getenv in production.
using EnvironmentLookup = std::function<const char*(const char*)>;
/// Runs `squeue -h -j JOB -o %e` for a job id and returns its output, or none.
using SqueueQuery = std::function<std::optional<std::string>(const std::string& job_id)>;

/// run.deadline when it is > 0; else SLURM_JOB_END_TIME (set by newer Slurm, not by 22.05);
/// else, when SLURM_JOB_ID is set, what squeue says; else none. Unusable values count as none.
JobEndTime find_job_end_time(int64_t deadline, const EnvironmentLookup& environment,
                             const SqueueQuery& squeue);

/// squeue's %e: UNIX seconds (with SLURM_TIME_FORMAT=%s) or "YYYY-MM-DDTHH:MM:SS" local time;
/// none for "N/A", "Unknown" and anything else.
std::optional<double> parse_squeue_end_time(const std::string& text);

/// Runs squeue through /bin/sh with SLURM_TIME_FORMAT=%s and a 30 s timeout; none when it
/// fails or the job id is not a Slurm job id (digits, '_' and '+' only).
std::optional<std::string> run_squeue(const std::string& job_id);

}  // namespace tessera
