// The training loop of one process: data, forward/backward over microbatches, clipping, AdamW,
// evaluation, logging. Later issues spread the same loop over a process grid.
#pragma once

#include <iosfwd>
#include <vector>

#include "io/config/config.hpp"

namespace tessera {

struct TrainResult {
  std::vector<double> losses;      ///< training loss of every step, in order
  std::vector<double> val_losses;  ///< validation loss of every evaluation, in order
  double tokens_per_s = 0.0;       ///< mean over the steps after the first
  double loss_floor = 0.0;         ///< the data source's entropy floor (NaN when unknown)
  double unigram_entropy = 0.0;    ///< of the training tokens: the baseline to beat
};

/// Trains as `config` says, writing config.toml and metrics.jsonl into run.dir and progress to
/// `console`. Throws UsageError before any work when the data cannot be used.
TrainResult train(const Config& config, std::ostream& console);

}  // namespace tessera
