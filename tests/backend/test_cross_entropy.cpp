// Softmax cross-entropy with z-loss: losses vs. the double reference, gradient vs. finite
// differences, the in-place case d_logits == logits, the loss-only case d_logits == nullptr.
#include "core/error.hpp"
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using CrossEntropyTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(CrossEntropyTest);

struct LossShape {
  int rows, vocab;
};
// Finite differences cost (rows * vocab)^2, so the gradient shapes stay small.
const LossShape kGradientShapes[] = {{1, 5}, {7, 17}, {3, 300}};
const LossShape kLossShapes[] = {{1, 5}, {7, 17}, {33, 1000}, {2, 50257}};
constexpr float kZLoss = 0.01f;
constexpr float kGradScale = 0.25f;

// The loss is lse (~ log vocab + 5) minus a logit: a few eps of each.
constexpr Tolerance kLoss{1e-5, 16.0};
// Gradient entries are softmax probabilities times O(1) factors.
constexpr Tolerance kGradient{1e-6, 32.0};

struct LossInputs {
  std::vector<float> logits;
  std::vector<int32_t> targets;
};

LossInputs make_inputs(const LossShape& s) {
  LossInputs inputs{random_floats(static_cast<std::size_t>(s.rows) * s.vocab, 71, -5.0f, 5.0f),
                    random_tokens(s.rows, 72, 0, s.vocab)};
  // Row 0 sits far from zero: exp without the max subtracted would overflow.
  for (int j = 0; j < s.vocab; ++j) inputs.logits[j] += 100.0f;
  return inputs;
}

testing::Message describe(const LossShape& s) {
  return testing::Message() << "rows=" << s.rows << " vocab=" << s.vocab;
}

TEST_P(CrossEntropyTest, LossMatchesReferenceWithoutGradient) {
  for (const LossShape& s : kLossShapes) {
    SCOPED_TRACE(describe(s));
    const LossInputs x = make_inputs(s);
    DeviceBuffer logits(backend(), x.logits), losses(backend(), constant_floats(s.rows, kGarbage));
    TokenBuffer targets(backend(), x.targets);
    for (const float z_loss : {0.0f, kZLoss}) {
      backend().softmax_cross_entropy(losses.get(), nullptr, logits.get(), targets.get(), s.rows,
                                      s.vocab, z_loss, kGradScale);
      const Vector expected =
          reference::cross_entropy(to_double(x.logits), x.targets, s.rows, s.vocab, z_loss);
      expect_close(losses.to_host(), expected, kLoss, "losses");
    }
    EXPECT_EQ(logits.to_host(), x.logits) << "d_logits == nullptr must leave logits alone";
  }
}

TEST_P(CrossEntropyTest, GradientMatchesFiniteDifferences) {
  for (const LossShape& s : kGradientShapes) {
    SCOPED_TRACE(describe(s));
    const LossInputs x = make_inputs(s);
    const Vector fd = finite_difference_gradient(
        [&](const Vector& v) {
          return reference::cross_entropy(v, x.targets, s.rows, s.vocab, kZLoss);
        },
        to_double(x.logits), Vector(s.rows, kGradScale));
    const Vector expected_losses =
        reference::cross_entropy(to_double(x.logits), x.targets, s.rows, s.vocab, kZLoss);
    TokenBuffer targets(backend(), x.targets);

    DeviceBuffer logits(backend(), x.logits), losses(backend(), s.rows);
    DeviceBuffer d_logits(backend(), constant_floats(x.logits.size(), kGarbage));
    backend().softmax_cross_entropy(losses.get(), d_logits.get(), logits.get(), targets.get(),
                                    s.rows, s.vocab, kZLoss, kGradScale);
    expect_close(d_logits.to_host(), fd, kGradient, "d_logits");
    expect_close(losses.to_host(), expected_losses, kLoss, "losses with gradient");

    // In place: the gradient replaces the logits, the losses are unchanged.
    backend().softmax_cross_entropy(losses.get(), logits.get(), logits.get(), targets.get(), s.rows,
                                    s.vocab, kZLoss, kGradScale);
    expect_close(logits.to_host(), fd, kGradient, "d_logits aliasing logits");
    expect_close(losses.to_host(), expected_losses, kLoss, "losses, in place");
  }
}

TEST_P(CrossEntropyTest, RejectsTargetOutsideVocabulary) {
  DeviceBuffer logits(backend(), 10), losses(backend(), 2);
  TokenBuffer targets(backend(), {1, 5});
  EXPECT_THROW(backend().softmax_cross_entropy(losses.get(), nullptr, logits.get(), targets.get(),
                                               2, 5, 0.0f, 1.0f),
               InternalError);
}

}  // namespace
}  // namespace tessera::test
