// Reproducible random inputs for the kernel tests (tests/backend) and the conformance suite
// (tests/conformance): the same seed gives the same values in both, whatever the backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace tessera::test {

/// `count` values uniform in [low, high), reproducible from `seed`.
inline std::vector<float> random_floats(std::size_t count, uint32_t seed, float low = -1.0f,
                                        float high = 1.0f) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(engine);
  return values;
}

/// `count` token ids uniform in [low, high), reproducible from `seed`.
inline std::vector<int32_t> random_tokens(std::size_t count, uint32_t seed, int32_t low,
                                          int32_t high) {
  std::mt19937 engine(seed);
  std::uniform_int_distribution<int32_t> distribution(low, high - 1);
  std::vector<int32_t> tokens(count);
  for (int32_t& token : tokens) token = distribution(engine);
  return tokens;
}

}  // namespace tessera::test
