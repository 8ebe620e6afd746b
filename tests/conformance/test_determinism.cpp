// Run-to-run reproducibility of a device backend: every kernel that reduces (parameter
// gradients, GEMMs, attention, losses, norms) gives bitwise identical results on a second call.
#include <cstring>

#include "conformance_support.hpp"

namespace tessera::test {
namespace {

using DeterminismConformance = DeviceConformance;

TEST_F(DeterminismConformance, NormalizationBackward) {
  const int rows = 1031, dim = 300;
  const std::size_t width = static_cast<std::size_t>(rows) * dim;
  const auto in = random_floats(width, 91), d_out = random_floats(width, 92);
  const auto gain = random_floats(dim, 93), stats = random_floats(rows, 94, 0.5f, 2.0f);
  expect_reproducible(
      {in, d_out, gain, stats, stats, std::vector<float>(width), random_floats(dim, 95),
       random_floats(dim, 96)},
      [&](std::vector<float*>& b) {
        device_backend().layernorm_backward(b[5], b[6], b[7], b[1], b[0], b[2], b[3], b[4], rows,
                                            dim);
        device_backend().rmsnorm_backward(b[5], b[6], b[1], b[0], b[2], b[4], rows, dim);
      },
      "layernorm_backward + rmsnorm_backward");
}

TEST_F(DeterminismConformance, LinearBackward) {
  const int rows = 1031, in_features = 300, out_features = 257;
  const std::size_t in_count = static_cast<std::size_t>(rows) * in_features;
  const std::size_t out_count = static_cast<std::size_t>(rows) * out_features;
  expect_reproducible(
      {random_floats(in_count, 97), random_floats(out_count, 98),
       random_floats(static_cast<std::size_t>(in_features) * out_features, 99),
       std::vector<float>(in_count),
       random_floats(static_cast<std::size_t>(in_features) * out_features, 100),
       random_floats(out_features, 101)},
      [&](std::vector<float*>& b) {
        device_backend().linear_backward(b[3], b[4], b[5], b[1], b[0], b[2], rows, in_features,
                                         out_features);
      },
      "linear_backward");
}

TEST_F(DeterminismConformance, EmbeddingBackwardWithRepeatedTokens) {
  const int rows = 4099, dim = 64, vocab = 37;
  const std::size_t width = static_cast<std::size_t>(rows) * dim;
  PairedTokens tokens(random_tokens(rows, 102, 0, vocab));
  const int32_t* device_tokens = tokens.on(device_backend());
  expect_reproducible(
      {random_floats(width, 103), random_floats(static_cast<std::size_t>(vocab) * dim, 104),
       random_floats(static_cast<std::size_t>(64) * dim, 105)},
      [&](std::vector<float*>& b) {
        device_backend().embedding_backward(b[1], device_tokens, b[0], rows, dim, 0, vocab);
        device_backend().position_backward(b[2], b[0], rows, 64, dim);
      },
      "embedding_backward + position_backward");
}

TEST_F(DeterminismConformance, AttentionAndLoss) {
  const AttentionShape s{4, 200, 4, 32};  // several tiles per (batch, head)
  const std::size_t qkv = static_cast<std::size_t>(s.batch) * s.seq * 3 * s.n_heads * s.head_dim;
  const std::size_t out = qkv / 3;
  const std::size_t state = device_backend().attention_state_count(s);
  const int rows = 256, vocab = 50257;
  PairedTokens targets(random_tokens(rows, 106, 0, vocab));
  const int32_t* device_targets = targets.on(device_backend());
  expect_reproducible(
      {random_floats(qkv, 107), std::vector<float>(out), std::vector<float>(state),
       random_floats(out, 108), std::vector<float>(qkv),
       random_floats(static_cast<std::size_t>(rows) * vocab, 109, -8.0f, 8.0f),
       std::vector<float>(rows)},
      [&](std::vector<float*>& b) {
        Backend& device = device_backend();
        device.attention_forward(b[1], b[2], b[0], s);
        device.attention_backward(b[4], b[3], b[0], b[1], b[2], s);
        device.softmax_cross_entropy(b[6], b[5], b[5], device_targets, rows, vocab, 1e-4f, 0.5f);
      },
      "attention_forward/backward + softmax_cross_entropy");
}

TEST_F(DeterminismConformance, SumOfSquares) {
  const std::size_t count = (1u << 22) + 17;
  PairedBuffer x(random_floats(count, 110));
  const double first = device_backend().sum_of_squares(x.on(device_backend()), count);
  const double second = device_backend().sum_of_squares(x.on(device_backend()), count);
  EXPECT_EQ(std::memcmp(&first, &second, sizeof(double)), 0) << first << " vs " << second;
}

}  // namespace
}  // namespace tessera::test
