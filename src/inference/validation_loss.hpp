// The loss of a checkpoint's model on the validation split of one data source, as the trainer
// would compute it, but over every validation window (or a given number of them) and with each
// window computed by exactly one data-parallel replica.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "inference/checkpoint_model.hpp"
#include "io/data/data_loader.hpp"

namespace tessera {

struct SourceLoss {
  std::string source;
  int64_t windows = 0;  ///< validation windows of seq_len + 1 tokens scored
  int64_t tokens = 0;   ///< predicted tokens: windows x seq_len
  double loss = 0.0;    ///< mean cross-entropy, nats per token
  double perplexity() const { return std::exp(loss); }
};

/// The validation split of `source` (as data.source names one: a directory from tessera
/// prepare, or "synthetic") read with the model's data settings. UsageError when it does not
/// open (missing, another tokenizer, a vocabulary larger than the model's).
DataLoader open_validation_source(const Config& config, const std::string& source);

/// The mean validation loss of `model` on `data` (named `source`) over its first `max_windows`
/// validation windows, 0 meaning all of them (the synthetic source, unbounded, needs a number).
/// Windows are summed in order, so the figure is the same whatever dp is. Collective over the
/// model's world. UsageError for a source without a validation window.
SourceLoss validation_loss(CheckpointModel& model, const DataLoader& data,
                           const std::string& source, int64_t max_windows,
                           const WorkProgress& progress = {});

}  // namespace tessera
