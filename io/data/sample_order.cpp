#include "io/data/sample_order.hpp"

#include <bit>

#include "core/error.hpp"
#include "core/philox.hpp"

namespace tessera {
namespace {

// Luby-Rackoff: four rounds with a pseudo-random round function already give a pseudo-random
// permutation; six leave margin for the tiny domains of small datasets.
constexpr uint32_t kFeistelRounds = 6;

}  // namespace

SampleOrder::SampleOrder(uint64_t n_windows, uint64_t seed) : n_windows_(n_windows), seed_(seed) {
  TESSERA_CHECK(n_windows > 0, "a sample order needs at least one window");
  const int bits = static_cast<int>(std::bit_width(n_windows - 1));
  half_bits_ = std::max(1, (bits + 1) / 2);
}

uint64_t SampleOrder::permute(uint64_t position, uint64_t epoch) const {
  TESSERA_CHECK(position < n_windows_, std::to_string(position));
  const uint64_t mask = (uint64_t{1} << half_bits_) - 1;
  const PhiloxKey key = {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)};
  uint64_t value = position;
  do {
    uint64_t left = value >> half_bits_, right = value & mask;
    for (uint32_t round = 0; round < kFeistelRounds; ++round) {
      // Epochs beyond 2^32 would repeat orders; at one window per step that is never reached.
      const PhiloxCounter counter = {static_cast<uint32_t>(right),
                                     static_cast<uint32_t>(right >> 32),
                                     static_cast<uint32_t>(epoch), round};
      const auto block = philox4x32(counter, key);
      const uint64_t mixed = (uint64_t{block[1]} << 32 | block[0]) & mask;
      const uint64_t next_right = left ^ mixed;
      left = right;
      right = next_right;
    }
    value = left << half_bits_ | right;
  } while (value >= n_windows_);
  return value;
}

uint64_t SampleOrder::window(uint64_t global_sample) const {
  return permute(global_sample % n_windows_, global_sample / n_windows_);
}

}  // namespace tessera
