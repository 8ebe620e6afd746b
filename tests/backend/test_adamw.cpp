// AdamW: three bias-corrected steps vs. the double reference (param, m and v after each step).
#include <algorithm>

#include "core/error.hpp"
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using AdamWTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(AdamWTest);

constexpr float kLr = 1e-2f, kBeta1 = 0.9f, kBeta2 = 0.999f, kEps = 1e-8f, kWeightDecay = 0.1f;
// Each step rounds a handful of fp32 operations; the reference keeps its state in double, so the
// drift over three steps is a few eps of each term. m = b1 m + (1 - b1) g can cancel to far below
// its terms (|terms| <~ 0.1), hence an absolute part of ~ 3 steps * 1 eps * 0.1; v sums positive
// terms and needs none.
constexpr Tolerance kFirstMoment{4e-8, 16.0};
constexpr Tolerance kSecondMoment{0.0, 16.0};
constexpr Tolerance kParam{1e-7, 16.0};

TEST_P(AdamWTest, ThreeStepsMatchReference) {
  for (std::size_t count :
       {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{100003}}) {
    SCOPED_TRACE(count);
    const std::vector<float> initial = random_floats(count, 81);
    Vector param = to_double(initial), m(count, 0.0), v(count, 0.0);
    DeviceBuffer dparam(backend(), initial), dm(backend(), count), dv(backend(), count);
    for (int step = 1; step <= 3; ++step) {
      SCOPED_TRACE(step);
      const std::vector<float> grad = random_floats(count, 82 + static_cast<uint32_t>(step));
      DeviceBuffer dgrad(backend(), grad);
      backend().adamw_update(dparam.get(), dgrad.get(), dm.get(), dv.get(),
                             {{0, count, kWeightDecay}}, {kLr, kBeta1, kBeta2, kEps, step});
      reference::adamw(param, to_double(grad), m, v, kLr, kBeta1, kBeta2, kEps, kWeightDecay, step);
      expect_close(dm.to_host(), m, kFirstMoment, "m");
      expect_close(dv.to_host(), v, kSecondMoment, "v");
      expect_close(dparam.to_host(), param, kParam, "param");
    }
  }
}

// A model's update in one call: segments with their own weight decay, a gap between them left
// alone, the gradients scaled (clipping) without being rewritten.
TEST_P(AdamWTest, SegmentsWithTheirOwnDecayAndAScaledGradient) {
  const std::size_t count = 20000;
  const std::vector<AdamWSegment> segments = {
      {0, 7, 0.0f}, {7, 12000, kWeightDecay}, {12500, 7500, 0.0f}};
  const float gradient_scale = 0.25f;
  const std::vector<float> initial = random_floats(count, 85), grad = random_floats(count, 86);
  DeviceBuffer dparam(backend(), initial), dgrad(backend(), grad), dm(backend(), count),
      dv(backend(), count);
  backend().adamw_update(dparam.get(), dgrad.get(), dm.get(), dv.get(), segments,
                         {kLr, kBeta1, kBeta2, kEps, 1, gradient_scale});
  Vector param = to_double(initial), m(count, 0.0), v(count, 0.0);
  Vector scaled = to_double(grad);
  for (double& g : scaled) g *= gradient_scale;
  for (const AdamWSegment& segment : segments) {
    Vector p(param.begin() + segment.offset, param.begin() + segment.offset + segment.count);
    Vector g(scaled.begin() + segment.offset, scaled.begin() + segment.offset + segment.count);
    Vector ms(segment.count, 0.0), vs(segment.count, 0.0);
    reference::adamw(p, g, ms, vs, kLr, kBeta1, kBeta2, kEps, segment.weight_decay, 1);
    std::copy(p.begin(), p.end(), param.begin() + segment.offset);
    std::copy(ms.begin(), ms.end(), m.begin() + segment.offset);
    std::copy(vs.begin(), vs.end(), v.begin() + segment.offset);
  }
  expect_close(dparam.to_host(), param, kParam, "param");  // the gap keeps its initial values
  expect_close(dm.to_host(), m, kFirstMoment, "m");
  expect_close(dv.to_host(), v, kSecondMoment, "v");
  EXPECT_EQ(dgrad.to_host(), grad);
}

TEST_P(AdamWTest, RejectsStepZero) {
  DeviceBuffer param(backend(), 4), grad(backend(), 4), m(backend(), 4), v(backend(), 4);
  EXPECT_THROW(backend().adamw_update(param.get(), grad.get(), m.get(), v.get(),
                                      {{0, 4, kWeightDecay}}, {kLr, kBeta1, kBeta2, kEps, 0}),
               InternalError);
}

}  // namespace
}  // namespace tessera::test
