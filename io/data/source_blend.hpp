// Which source each global sample of a data mix comes from (data.sources / data.weights).
//
// Samples go in blocks of kBlendBlock. Source s, with cumulative weight C_s (C_last = 1 exactly),
// holds floor(C_s T) - floor(C_{s-1} T) of the first T = b * kBlendBlock samples, so after every
// block each source's count is within one of its weight's share; which slots of a block are
// whose is a pseudo-random permutation keyed by (seed, block). A sample's source and its index
// among that source's samples are O(1) functions of the sample alone: any rank computes them
// without coordination, and a run resumed at another layout draws exactly the same sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/data/sample_order.hpp"

namespace tessera {

inline constexpr uint64_t kBlendBlock = 256;

class SourceBlend {
 public:
  /// `weights`: positive, any sum (normalised here).
  SourceBlend(const std::vector<double>& weights, uint64_t seed);

  struct Draw {
    size_t source;
    uint64_t index;  ///< among the samples drawn from `source`, 0, 1, 2, ...
  };
  Draw draw(uint64_t sample) const;
  /// Samples from each source among global samples [0, samples).
  std::vector<uint64_t> counts(uint64_t samples) const;
  const std::vector<double>& weights() const { return weights_; }  ///< normalised

 private:
  /// Samples from sources [0, s) among the first `samples` (whole blocks only).
  uint64_t below(size_t s, uint64_t samples) const;

  std::vector<double> weights_;
  std::vector<double> cumulative_;  // cumulative_[s] = weights of sources [0, s]; back() = 1
  SampleOrder slots_;
};

}  // namespace tessera
