// Learning-rate schedule: linear warm-up, then cosine decay to a floor or a constant rate.
#pragma once

#include "io/config/config.hpp"

namespace tessera {

/// Learning rate for optimizer step `step` (1-based). Warm-up rises linearly from lr/warmup to
/// lr over `warmup_steps`; cosine then falls from lr to min_lr at step `steps`.
/// A pure function of (config, step), so a resumed run needs no schedule state.
double learning_rate(const TrainConfig& train, int step);

}  // namespace tessera
