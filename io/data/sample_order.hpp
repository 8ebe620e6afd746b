// The order in which training windows are visited.
//
// Global sample g belongs to epoch e = g / n_windows and is window permute_e(g mod n_windows),
// where permute_e is a pseudo-random permutation of [0, n_windows) drawn from (seed, e). The
// permutation is a balanced Feistel network keyed with Philox on the smallest even-bit domain
// 2^(2h) >= n_windows, restricted to [0, n_windows) by cycle walking (a value outside the range
// is permuted again until it falls inside; the domain is < 4 n_windows, so that takes < 4 tries
// on average). It is a bijection by construction, costs O(1) per sample and needs no table, so
// every data-parallel rank maps any global sample to its window without coordination, and a
// resumed run reads exactly the samples it would have read.
#pragma once

#include <cstdint>

namespace tessera {

class SampleOrder {
 public:
  SampleOrder(uint64_t n_windows, uint64_t seed);

  /// Window visited by global sample `global_sample` (any value >= 0; epochs wrap around).
  uint64_t window(uint64_t global_sample) const;
  /// Position within an epoch -> window; a permutation of [0, n_windows) for each epoch.
  uint64_t permute(uint64_t position, uint64_t epoch) const;
  uint64_t n_windows() const { return n_windows_; }

 private:
  uint64_t n_windows_;
  uint64_t seed_;
  int half_bits_;  ///< each Feistel half holds this many bits
};

}  // namespace tessera
