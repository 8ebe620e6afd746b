#include <gtest/gtest.h>

#include <vector>

#include "io/data/sample_order.hpp"

namespace tessera {
namespace {

std::vector<uint64_t> epoch_order(const SampleOrder& order, uint64_t epoch) {
  std::vector<uint64_t> windows(order.n_windows());
  for (uint64_t p = 0; p < order.n_windows(); ++p) windows[p] = order.permute(p, epoch);
  return windows;
}

TEST(SampleOrder, EveryEpochVisitsEveryWindowOnce) {
  for (uint64_t n : {1u, 2u, 3u, 5u, 7u, 64u, 65u, 1000u, 4097u}) {
    const SampleOrder order(n, 42);
    for (uint64_t epoch = 0; epoch < 3; ++epoch) {
      std::vector<int> seen(n, 0);
      for (uint64_t w : epoch_order(order, epoch)) {
        ASSERT_LT(w, n);
        ++seen[w];
      }
      for (uint64_t w = 0; w < n; ++w) ASSERT_EQ(seen[w], 1) << "n=" << n << " window " << w;
    }
  }
}

TEST(SampleOrder, GlobalSamplesWalkEpochsInTurn) {
  const SampleOrder order(37, 9);
  for (uint64_t g = 0; g < 37 * 4; ++g) EXPECT_EQ(order.window(g), order.permute(g % 37, g / 37));
}

TEST(SampleOrder, DeterministicForASeedAndDifferentAcrossSeedsAndEpochs) {
  const SampleOrder a(1000, 1234), b(1000, 1234), other_seed(1000, 1235);
  EXPECT_EQ(epoch_order(a, 0), epoch_order(b, 0));
  EXPECT_EQ(epoch_order(a, 5), epoch_order(b, 5));

  auto count_equal = [](const std::vector<uint64_t>& x, const std::vector<uint64_t>& y) {
    int equal = 0;
    for (size_t i = 0; i < x.size(); ++i) equal += x[i] == y[i];
    return equal;
  };
  // Two independent random permutations agree in about one place; allow a generous margin.
  EXPECT_LT(count_equal(epoch_order(a, 0), epoch_order(other_seed, 0)), 10);
  EXPECT_LT(count_equal(epoch_order(a, 0), epoch_order(a, 1)), 10);
  std::vector<uint64_t> identity(1000);
  for (uint64_t i = 0; i < 1000; ++i) identity[i] = i;
  EXPECT_LT(count_equal(epoch_order(a, 0), identity), 10);
}

TEST(SampleOrder, FirstWindowIsSpreadOverEpochs) {
  // The window at position 0 over many epochs should average about (n - 1) / 2.
  const uint64_t n = 101;
  const SampleOrder order(n, 7);
  double sum = 0.0;
  const int epochs = 4000;
  for (int e = 0; e < epochs; ++e) sum += static_cast<double>(order.permute(0, e));
  EXPECT_NEAR(sum / epochs, 50.0, 2.0);
}

}  // namespace
}  // namespace tessera
