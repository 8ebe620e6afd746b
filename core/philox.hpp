// Philox4x32-10, the counter-based random number generator of Salmon et al., "Parallel Random
// Numbers: As Easy as 1, 2, 3" (SC'11), bit-compatible with Random123's philox4x32_R(10, ...).
//
// A counter-based generator is a keyed hash: the n-th random number of a stream is computed
// directly from (seed, stream, n), with no state to carry, share or checkpoint. Any rank, thread
// or resumed run that asks for the same triple gets the same bits.
//
// Layout used by the helpers below: key = seed (low word, high word); counter = (block low,
// block high, stream low, stream high). Number `index` of a stream is word index % 4 of block
// index / 4, so filling consecutive indices costs one philox call per four numbers.
//
// Header-only on purpose: the functions are a few lines each and sit in inner loops.
#pragma once

#include <array>
#include <cstdint>

namespace tessera {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

namespace philox_detail {

inline constexpr uint32_t kMultiplier0 = 0xD2511F53u;
inline constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
inline constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

inline void multiply(uint32_t a, uint32_t b, uint32_t& high, uint32_t& low) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  high = static_cast<uint32_t>(product >> 32);
  low = static_cast<uint32_t>(product);
}

}  // namespace philox_detail

/// Ten Philox rounds: four pseudo-random words from a 128-bit counter and a 64-bit key.
inline PhiloxCounter philox4x32(PhiloxCounter counter, PhiloxKey key) {
  using namespace philox_detail;
  for (int round = 0; round < 10; ++round) {
    uint32_t high0, low0, high1, low1;
    multiply(kMultiplier0, counter[0], high0, low0);
    multiply(kMultiplier1, counter[2], high1, low1);
    counter = {high1 ^ counter[1] ^ key[0], low1, high0 ^ counter[3] ^ key[1], low0};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return counter;
}

/// Block `block` of stream `stream` under `seed`: four words, numbers 4*block .. 4*block+3.
inline PhiloxCounter philox_block(uint64_t seed, uint64_t stream, uint64_t block) {
  return philox4x32({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                     static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}

/// Random 32-bit word number `index` of stream `stream` under `seed`.
inline uint32_t philox_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return philox_block(seed, stream, index / 4)[index % 4];
}

/// Converts 32 random bits to a float uniform on [0, 1) with 24 bits of resolution.
inline float bits_to_uniform_float(uint32_t bits) {
  return static_cast<float>(bits >> 8) * 0x1.0p-24f;
}

/// Converts 32 random bits to a double uniform on the open interval (0, 1): (bits + 0.5) / 2^32.
/// Never 0, so log(u) is finite.
inline double bits_to_open_uniform(uint32_t bits) { return (bits + 0.5) * 0x1.0p-32; }

/// Number `index` of stream `stream` under `seed`, uniform on [0, 1).
inline float uniform_float(uint64_t seed, uint64_t stream, uint64_t index) {
  return bits_to_uniform_float(philox_bits(seed, stream, index));
}

}  // namespace tessera
