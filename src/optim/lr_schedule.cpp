#include "optim/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tessera {

double learning_rate(const TrainConfig& train, int step) {
  if (step <= train.warmup_steps) {
    return static_cast<double>(train.lr) * step / std::max(1, train.warmup_steps);
  }
  if (train.lr_schedule == LrSchedule::constant) return train.lr;
  const int decay_steps = std::max(1, train.steps - train.warmup_steps);
  const double progress =
      std::min(1.0, static_cast<double>(step - train.warmup_steps) / decay_steps);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return train.min_lr + (static_cast<double>(train.lr) - train.min_lr) * cosine;
}

}  // namespace tessera
