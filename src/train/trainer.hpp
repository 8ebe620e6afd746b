// The training loop: data, the pipeline schedule over microbatches, gradient reduction,
// clipping, AdamW, evaluation, logging, on however many ranks the job has.
#pragma once

#include <iosfwd>
#include <vector>

#include "io/config/config.hpp"
#include "parallel/layout/training_layout.hpp"
#include "parallel/parallel_context.hpp"
#include "train/stop_decision.hpp"

namespace tessera {

/// Exit statuses of `tessera train`, the contract with job scripts (jobs/, doc/checkpoints.md):
/// 0 finished all steps; kStoppedEarlyExit stopped early after a good checkpoint (a stop signal
/// or the job's time limit) and wants to be requeued; kDivergedExit stopped because the loss or
/// gradients stayed non-finite (train.max_bad_steps), which a requeue would not cure; kHungExit
/// no rank made progress for train.hang_timeout_s (the hang watchdog ended the job); 2 bad
/// input; 1 failure. 75 is EX_TEMPFAIL of sysexits.h: "try again later".
inline constexpr int kStoppedEarlyExit = 75;
inline constexpr int kDivergedExit = 3;
inline constexpr int kHungExit = 4;

struct TrainResult {
  std::vector<double> losses;      ///< training loss of every step, in order (every rank)
  std::vector<double> val_losses;  ///< validation loss of every evaluation, in order
  double tokens_per_s = 0.0;       ///< mean over the steps after the first
  double loss_floor = 0.0;         ///< the data source's entropy floor (NaN when unknown)
  double unigram_entropy = 0.0;    ///< of the training tokens: the baseline to beat
  /// Why the run stopped before its last step, after saving a checkpoint (none: it did not).
  StopReason stopped_early = StopReason::none;
  /// The step at which train.max_bad_steps non-finite steps in a row ended the run (0: none did).
  int diverged_at_step = 0;
};

/// The exit status a finished `train` call stands for: 0, kStoppedEarlyExit or kDivergedExit.
int exit_status(const TrainResult& result);

/// Trains as `config` says on the ranks of `parallel`, whose grid is `layout`'s (resolve_layout
/// of `config` on them). World rank 0 writes config.toml,
/// manifest.json and metrics.jsonl into run.dir and progress to `console`; the others stay
/// silent. Throws UsageError before any work when the data cannot be used. SIGUSR1 or SIGTERM
/// (on any rank), or the job's end drawing near, ends the run early with a checkpoint
/// (TrainResult::stopped_early).
TrainResult train(const Config& config, const TrainingLayout& layout, std::ostream& console,
                  ParallelContext& parallel);

/// The same on every rank of MPI_COMM_WORLD: resolves the layout (UsageError on every rank when
/// it cannot work) and builds its process grid. MPI must be initialised.
TrainResult train(const Config& config, std::ostream& console);

}  // namespace tessera
