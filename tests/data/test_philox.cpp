#include <gtest/gtest.h>

#include <cmath>

#include "core/philox.hpp"

namespace tessera {
namespace {

// Known-answer vectors of philox4x32-10 from Random123 (kat_vectors).
TEST(Philox, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(philox4x32({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, IndexAddressesWordsOfConsecutiveBlocks) {
  const auto block = philox_block(7, 3, 5);
  for (uint64_t word = 0; word < 4; ++word) EXPECT_EQ(philox_bits(7, 3, 20 + word), block[word]);
  EXPECT_NE(philox_bits(7, 3, 20), philox_bits(7, 4, 20));
  EXPECT_NE(philox_bits(7, 3, 20), philox_bits(8, 3, 20));
}

TEST(Philox, UniformFloatIsInRangeWithTheRightMoments) {
  const int n = 200000;
  double sum = 0.0, sum_sq = 0.0;
  for (int i = 0; i < n; ++i) {
    const float u = uniform_float(1, 2, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    sum_sq += static_cast<double>(u) * u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NEAR(sum_sq / n - (sum / n) * (sum / n), 1.0 / 12.0, 0.002);
  EXPECT_GT(bits_to_open_uniform(0), 0.0);
  EXPECT_LT(bits_to_open_uniform(0xffffffffu), 1.0);
}

}  // namespace
}  // namespace tessera
