#include "io/data/source_blend.hpp"

#include <cmath>

#include "core/error.hpp"

namespace tessera {

SourceBlend::SourceBlend(const std::vector<double>& weights, uint64_t seed)
    : slots_(kBlendBlock, seed ^ 0x6d69782d736c6f74ull) {  // "mix-slot": not the windows' key
  TESSERA_CHECK(!weights.empty(), "a blend of no sources");
  double total = 0;
  for (double w : weights) {
    TESSERA_CHECK(w > 0 && std::isfinite(w), "weight " + std::to_string(w));
    total += w;
  }
  double running = 0;
  for (double w : weights) {
    weights_.push_back(w / total);
    running += w / total;
    cumulative_.push_back(running);
  }
  cumulative_.back() = 1.0;  // the last boundary must be every sample, whatever the rounding
}

uint64_t SourceBlend::below(size_t s, uint64_t samples) const {
  if (s == 0) return 0;
  return static_cast<uint64_t>(std::floor(cumulative_[s - 1] * static_cast<double>(samples)));
}

SourceBlend::Draw SourceBlend::draw(uint64_t sample) const {
  const uint64_t block = sample / kBlendBlock;
  const uint64_t start = block * kBlendBlock, end = start + kBlendBlock;
  const uint64_t slot = slots_.window(sample);  // the block's permutation of its positions
  // Source s owns slots [below(s, end) - below(s, start), below(s + 1, end) - below(s + 1,
  // start)) of this block: the sources' shares of the block, in order.
  size_t s = 0;
  while (s + 1 < weights_.size() && slot >= below(s + 1, end) - below(s + 1, start)) ++s;
  const uint64_t first_slot = below(s, end) - below(s, start);
  const uint64_t drawn_before = below(s + 1, start) - below(s, start);
  return {s, drawn_before + (slot - first_slot)};
}

std::vector<uint64_t> SourceBlend::counts(uint64_t samples) const {
  const uint64_t whole = samples / kBlendBlock * kBlendBlock;
  std::vector<uint64_t> counts(weights_.size());
  for (size_t s = 0; s < weights_.size(); ++s) counts[s] = below(s + 1, whole) - below(s, whole);
  for (uint64_t sample = whole; sample < samples; ++sample) ++counts[draw(sample).source];
  return counts;
}

}  // namespace tessera
