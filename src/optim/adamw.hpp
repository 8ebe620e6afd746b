// AdamW over a ParameterStore, with global gradient-norm clipping.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "model/parameters.hpp"

namespace tessera {

class AdamW {
 public:
  /// Moments live in flat buffers laid out like the parameters. Weight decay applies to
  /// parameters whose ParameterInfo says so; norms, biases and embeddings are excluded unless
  /// train.decay_norms_and_biases / train.decay_embeddings ask for them.
  AdamW(const TrainConfig& train, ParameterStore& parameters, Backend& backend);
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  /// L2 norm of all gradients. Without model parallelism this is the global norm; with it, the
  /// caller sums the squares across ranks first (see `gradient_sum_of_squares`).
  double gradient_sum_of_squares() const;
  /// Scales the gradients so their global norm is at most train.grad_clip; returns the scale.
  float clip_factor(double global_norm) const;

  /// One update at optimizer step `step` (1-based) with learning rate `lr`; gradients are first
  /// multiplied by `gradient_scale` (clipping).
  void step(int step, double lr, float gradient_scale);

  float* first_moments() { return m_; }
  float* second_moments() { return v_; }

 private:
  bool decays(const ParameterInfo& info) const;

  TrainConfig train_;
  ParameterStore& parameters_;
  Backend& backend_;
  float* m_ = nullptr;
  float* v_ = nullptr;
};

}  // namespace tessera
