// Vocab-parallel cross-entropy: splitting the vocabulary over 1, 2 or 3 shards, combining the
// shard statistics as the model does (max, re-base, sums) and finishing on each shard must give
// the unsharded loss and, column by column, the unsharded gradient.
#include <algorithm>
#include <deque>

#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using ShardedCrossEntropyTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(ShardedCrossEntropyTest);

// Combining shards adds a log and an exp per row to the unsharded computation: a few eps more.
constexpr Tolerance kLoss{1e-5, 32.0};
constexpr Tolerance kGradient{1e-6, 64.0};

/// Slices columns [begin, begin + width) out of a [rows, vocab] matrix.
std::vector<float> columns(const std::vector<float>& matrix, int rows, int vocab, int begin,
                           int width) {
  std::vector<float> out;
  for (int r = 0; r < rows; ++r) {
    const auto row = matrix.begin() + static_cast<std::ptrdiff_t>(r) * vocab + begin;
    out.insert(out.end(), row, row + width);
  }
  return out;
}

TEST_P(ShardedCrossEntropyTest, ShardsCombineToTheUnshardedLossAndGradient) {
  const int rows = 7, vocab = 24;
  const float z_loss = 0.01f, grad_scale = 0.5f;
  std::vector<float> logits = random_floats(static_cast<std::size_t>(rows) * vocab, 5, -4, 4);
  for (int j = 0; j < vocab; ++j) logits[j] += 80.0f;  // a row far from zero
  const std::vector<int32_t> target_values = random_tokens(rows, 6, 0, vocab);
  TokenBuffer targets(backend(), target_values);

  DeviceBuffer full(backend(), logits), full_losses(backend(), constant_floats(rows, kGarbage));
  backend().softmax_cross_entropy(full_losses.get(), full.get(), full.get(), targets.get(), rows,
                                  vocab, z_loss, grad_scale);
  const std::vector<float> expected_gradient = full.to_host();
  const Vector expected_losses = to_double(full_losses.to_host());

  for (const int shards : {1, 2, 3}) {
    SCOPED_TRACE(testing::Message() << shards << " shards");
    const int width = vocab / shards;
    std::deque<DeviceBuffer> local;  // DeviceBuffer cannot move; a deque never moves it
    std::vector<std::vector<float>> maxima(shards), sums(shards), target_logits(shards);
    for (int s = 0; s < shards; ++s) {
      local.emplace_back(backend(), columns(logits, rows, vocab, s * width, width));
      DeviceBuffer max(backend(), constant_floats(rows, kGarbage)),
          sum(backend(), constant_floats(rows, kGarbage)),
          target(backend(), constant_floats(rows, kGarbage));
      backend().cross_entropy_shard_stats(max.get(), sum.get(), target.get(), local[s].get(),
                                          targets.get(), rows, width, s * width);
      maxima[s] = max.to_host();
      sums[s] = sum.to_host();
      target_logits[s] = target.to_host();
    }
    // What the model does over the tensor-parallel group, done here by hand.
    std::vector<float> global_max(rows), global_sum(rows, 0.0f), global_target(rows, 0.0f);
    for (int r = 0; r < rows; ++r) {
      global_max[r] = maxima[0][r];
      for (int s = 1; s < shards; ++s) global_max[r] = std::max(global_max[r], maxima[s][r]);
    }
    DeviceBuffer group_max(backend(), global_max);
    for (int s = 0; s < shards; ++s) {
      DeviceBuffer sum(backend(), sums[s]), max(backend(), maxima[s]);
      backend().rebase_row_sums(sum.get(), max.get(), group_max.get(), rows);
      const std::vector<float> rebased = sum.to_host();
      for (int r = 0; r < rows; ++r) {
        global_sum[r] += rebased[r];
        global_target[r] += target_logits[s][r];
      }
    }
    DeviceBuffer group_sum(backend(), global_sum), group_target(backend(), global_target);
    for (int s = 0; s < shards; ++s) {
      DeviceBuffer losses(backend(), constant_floats(rows, kGarbage));
      backend().cross_entropy_shard_finish(
          losses.get(), local[s].get(), local[s].get(), targets.get(), group_max.get(),
          group_sum.get(), group_target.get(), rows, width, s * width, z_loss, grad_scale);
      expect_close(losses.to_host(), expected_losses, kLoss, "losses");
      expect_close(local[s].to_host(),
                   to_double(columns(expected_gradient, rows, vocab, s * width, width)), kGradient,
                   "d_logits");
    }
  }
}

}  // namespace
}  // namespace tessera::test
