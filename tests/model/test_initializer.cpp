// Initialisation must not depend on how a tensor is split across ranks.
#include <gtest/gtest.h>

#include <cmath>

#include "model/initializer.hpp"

namespace tessera {
namespace {

ParameterInfo matrix(int64_t rows, int64_t cols) {
  ParameterInfo info;
  info.name = "layers/0/attn/q/weight";
  info.global_shape = info.local_shape = {rows, cols};
  info.global_offset = {0, 0};
  info.count = static_cast<std::size_t>(rows * cols);
  info.init = InitKind::normal;
  info.init_std = 0.02f;
  return info;
}

TEST(Initializer, AnyBlockOfATensorGetsTheValuesOfTheWholeTensor) {
  const ParameterInfo whole = matrix(12, 10);
  std::vector<float> full(whole.count);
  fill_parameter_block(whole, 7, full.data());
  // Split rows 3 ways and columns 2 ways, as tensor parallelism would, at odd offsets too.
  for (int64_t row0 : {0, 4, 8, 5}) {
    for (int64_t col0 : {0, 5, 3}) {
      ParameterInfo block = whole;
      block.local_shape = {4, 5};
      block.global_offset = {row0, col0};
      block.count = 20;
      std::vector<float> part(block.count);
      fill_parameter_block(block, 7, part.data());
      for (int64_t r = 0; r < 4; ++r) {
        for (int64_t c = 0; c < 5; ++c) {
          EXPECT_EQ(part[static_cast<std::size_t>(r * 5 + c)],
                    full[static_cast<std::size_t>((row0 + r) * 10 + col0 + c)]);
        }
      }
    }
  }
}

TEST(Initializer, ValuesHaveTheRequestedMomentsAndDependOnSeedAndName) {
  ParameterInfo info = matrix(256, 256);
  std::vector<float> a(info.count), b(info.count), c(info.count);
  fill_parameter_block(info, 1, a.data());
  fill_parameter_block(info, 2, b.data());
  info.name = "layers/0/attn/k/weight";
  fill_parameter_block(info, 1, c.data());
  double sum = 0, sum_sq = 0;
  for (float x : a) {
    sum += x;
    sum_sq += static_cast<double>(x) * x;
  }
  const double n = static_cast<double>(a.size());
  EXPECT_NEAR(sum / n, 0.0, 5 * 0.02 / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(sum_sq / n), 0.02, 0.02 * 0.02);
  EXPECT_NE(a[0], b[0]);
  EXPECT_NE(a[0], c[0]);
}

TEST(Initializer, OnesAndZeros) {
  ParameterInfo info = matrix(1, 5);
  std::vector<float> out(5, 3.0f);
  info.init = InitKind::ones;
  fill_parameter_block(info, 1, out.data());
  for (float x : out) EXPECT_EQ(x, 1.0f);
  info.init = InitKind::zeros;
  fill_parameter_block(info, 1, out.data());
  for (float x : out) EXPECT_EQ(x, 0.0f);
}

}  // namespace
}  // namespace tessera
