// AdamW over a ParameterStore, or over one data-parallel shard of it (ZeRO stage 1).
#pragma once

#include <cstdint>
#include <limits>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "model/parameters.hpp"

namespace tessera {

/// Factor that brings gradients of global L2 norm `global_norm` down to at most `limit`
/// (1 when already within it, or when limit <= 0 disables clipping).
float clip_factor(float limit, double global_norm);

class AdamW {
 public:
  static constexpr std::size_t kWhole = std::numeric_limits<std::size_t>::max();

  /// Updates elements [begin, end) of the flat parameter buffer (end <= padded_count()): the
  /// whole buffer, or under ZeRO-1 this rank's shard. Moments are kept for that range only. Weight
  /// decay applies to parameters that are matrices; norms, biases and embeddings are excluded
  /// unless train.decay_norms_and_biases / train.decay_embeddings ask for them.
  AdamW(const TrainConfig& train, ParameterStore& parameters, Backend& backend,
        std::size_t begin = 0, std::size_t end = kWhole);
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  /// One update at optimizer step `step` (1-based) with learning rate `lr`; the range's
  /// gradients are used multiplied by `gradient_scale` (clipping); the gradient buffer keeps its
  /// values.
  void step(int step, double lr, float gradient_scale);

  std::size_t begin() const { return begin_; }
  std::size_t end() const { return end_; }
  float* first_moments() { return m_; }
  float* second_moments() { return v_; }

 private:
  bool decays(const ParameterInfo& info) const;

  TrainConfig train_;
  ParameterStore& parameters_;
  Backend& backend_;
  std::size_t begin_, end_;
  float* m_ = nullptr;
  float* v_ = nullptr;
};

}  // namespace tessera
