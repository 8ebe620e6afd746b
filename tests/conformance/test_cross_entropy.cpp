// Fused softmax cross-entropy with z-loss: losses, gradient, grad_scale, in-place gradient.
#include <cmath>

#include "conformance_support.hpp"
#include "core/error.hpp"

namespace tessera::test {
namespace {

using CrossEntropyConformance = DeviceConformance;

struct Case {
  int rows, vocab;
  float spread;  ///< logits U(-spread, spread) + offset
  float offset;
  float z_loss, grad_scale;
};
const Case kCases[] = {{1, 5, 1.0f, 0.0f, 0.0f, 1.0f},       {7, 17, 4.0f, 0.0f, 1e-4f, 0.5f},
                       {33, 64, 8.0f, 30.0f, 0.0f, 1.0f},    {7, 1000, 4.0f, -5.0f, 1e-3f, 0.25f},
                       {3, 50257, 10.0f, 0.0f, 1e-4f, 1.0f}, {129, 256, 2.0f, 0.0f, 0.0f, 0.125f}};

// The CPU sums exponentials in double; the GPU keeps an online (max, sum) in fp32, each thread
// over vocab/256 elements, then an 8-level tree, rescaling with expf (2 ulps) when the max grows.
// Relative error of the sum, hence absolute error of lse: ~ (vocab/256 + 32) eps, times 4 for
// headroom. The loss adds lse - x[t] (+ z lse^2: |lse| <~ 40 here, so 2 z |lse| <~ 0.1 of it).
// lse = max + log(sum) and x - lse are each rounded at the size of |lse| (2 ulps of max_lse).
// Gradients softmax * factor inherit lse's error as a relative error, plus expf's 2 ulps.
double lse_error(int vocab, double max_lse) {
  return (4.0 * (vocab / 256.0 + 32.0) + 2.0 * max_lse) * kFloatEps;
}

TEST_F(CrossEntropyConformance, LossesAndGradients) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(testing::Message() << "rows=" << c.rows << " vocab=" << c.vocab
                                    << " z_loss=" << c.z_loss << " grad_scale=" << c.grad_scale);
    const std::size_t count = static_cast<std::size_t>(c.rows) * c.vocab;
    std::vector<float> logits = random_floats(count, 81, -c.spread, c.spread);
    for (float& x : logits) x += c.offset;
    PairedBuffer x(logits), d_logits(random_floats(count, 82));
    PairedBuffer losses(static_cast<std::size_t>(c.rows)),
        losses_only(static_cast<std::size_t>(c.rows));
    PairedTokens targets(random_tokens(static_cast<std::size_t>(c.rows), 83, 0, c.vocab));
    for_each_backend([&](Backend& b) {
      b.softmax_cross_entropy(losses.on(b), d_logits.on(b), x.on(b), targets.on(b), c.rows, c.vocab,
                              c.z_loss, c.grad_scale);
      b.softmax_cross_entropy(losses_only.on(b), nullptr, x.on(b), targets.on(b), c.rows, c.vocab,
                              c.z_loss, c.grad_scale);
    });
    const double max_lse = std::fabs(c.offset) + c.spread + std::log(c.vocab);
    const double lse = lse_error(c.vocab, max_lse);
    const Tolerance loss{lse * (1.0 + 2.0 * c.z_loss * max_lse), 8.0};
    const Tolerance grad{c.grad_scale * (lse + 8.0 * kFloatEps), lse / kFloatEps + 8.0};
    expect_match(losses, loss, "softmax_cross_entropy losses");
    expect_match(losses_only, loss, "softmax_cross_entropy losses without gradient");
    expect_match(d_logits, grad, "softmax_cross_entropy d_logits");

    // d_logits aliasing logits: the logits are consumed and replaced by their gradient.
    for_each_backend([&](Backend& b) {
      b.softmax_cross_entropy(losses.on(b), x.on(b), x.on(b), targets.on(b), c.rows, c.vocab,
                              c.z_loss, c.grad_scale);
    });
    expect_match(losses, loss, "softmax_cross_entropy losses, in place");
    expect_match(x, grad, "softmax_cross_entropy d_logits, in place");
  }
}

// The vocab-parallel pieces on one shard (columns [vocab_begin, vocab_begin + vocab_local) of a
// larger vocabulary; targets inside and outside it), each from the same inputs on both sides.
TEST_F(CrossEntropyConformance, VocabParallelPieces) {
  const int rows = 33, vocab_local = 300, vocab_begin = 200, vocab = 1000;
  const std::size_t count = static_cast<std::size_t>(rows) * vocab_local;
  const std::size_t n = static_cast<std::size_t>(rows);
  PairedBuffer logits(random_floats(count, 85, -6.0f, 6.0f));
  PairedTokens targets(random_tokens(n, 86, 0, vocab));
  PairedBuffer row_max(n), row_sum(n), target_logit(n);
  for_each_backend([&](Backend& b) {
    b.cross_entropy_shard_stats(row_max.on(b), row_sum.on(b), target_logit.on(b), logits.on(b),
                                targets.on(b), rows, vocab_local, vocab_begin);
  });
  expect_match(row_max, kExact, "cross_entropy_shard_stats row_max");
  expect_match(row_sum, {0.0, lse_error(vocab_local, 0.0) / kFloatEps}, "shard_stats row_sum");
  expect_match(target_logit, kExact, "cross_entropy_shard_stats target_logit");

  std::vector<float> global_max = row_max.cpu_values();
  for (std::size_t r = 0; r < n; ++r) global_max[r] += 0.5f * static_cast<float>(r % 3);
  PairedBuffer group_max(global_max), rebased(row_sum.cpu_values());
  for_each_backend(
      [&](Backend& b) { b.rebase_row_sums(rebased.on(b), row_max.on(b), group_max.on(b), rows); });
  expect_match(rebased, {0.0, 4.0}, "rebase_row_sums");  // expf (2 ulps) and one product

  const double max_lse = 6.0 + std::log(vocab);
  const double lse = lse_error(vocab_local, max_lse);
  PairedBuffer group_sum(random_floats(n, 87, 100.0f, 900.0f)), losses(n);
  PairedBuffer group_target(random_floats(n, 88, -6.0f, 6.0f));
  PairedBuffer d_logits(random_floats(count, 89));
  for_each_backend([&](Backend& b) {
    b.cross_entropy_shard_finish(losses.on(b), d_logits.on(b), logits.on(b), targets.on(b),
                                 group_max.on(b), group_sum.on(b), group_target.on(b), rows,
                                 vocab_local, vocab_begin, 1e-4f, 0.5f);
  });
  expect_match(losses, {lse, 8.0}, "cross_entropy_shard_finish losses");
  expect_match(d_logits, {0.5 * (lse + 8.0 * kFloatEps), lse / kFloatEps + 8.0},
               "cross_entropy_shard_finish d_logits");
}

TEST_F(CrossEntropyConformance, RejectsTargetsOutsideTheVocabulary) {
  PairedBuffer x(random_floats(3 * 5, 84)), losses(3);
  PairedTokens targets({0, 5, 2});
  Backend& device = device_backend();
  EXPECT_THROW(device.softmax_cross_entropy(losses.on(device), nullptr, x.on(device),
                                            targets.on(device), 3, 5, 0.0f, 1.0f),
               InternalError);
  // The backend stays usable afterwards.
  PairedTokens good({0, 4, 2});
  EXPECT_NO_THROW(device.softmax_cross_entropy(losses.on(device), nullptr, x.on(device),
                                               good.on(device), 3, 5, 0.0f, 1.0f));
}

}  // namespace
}  // namespace tessera::test
