// GELU (tanh approximation) and SwiGLU, forward and backward.
#include "conformance_support.hpp"

namespace tessera::test {
namespace {

using ActivationConformance = DeviceConformance;

const std::size_t kCounts[] = {1, 7, 33, 1000, 100003};

// tanhf / expf are within 2 ulps on CUDA and 1 ulp in glibc; a handful of products and sums
// follow (fused into FMAs on the GPU). Where 1 + tanh or 1 - tanh^2 cancels (|x| large) the error
// is a few ulps of 1 times |x| <= 6: the absolute part. Inputs U(-6, 6) reach both tails.
constexpr Tolerance kActivation{16.0 * 6.0 * kFloatEps, 16.0};

TEST_F(ActivationConformance, Gelu) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    PairedBuffer in(random_floats(count, 61, -6.0f, 6.0f)), out(count);
    PairedBuffer d_out(random_floats(count, 62)), d_in(random_floats(count, 63));
    for_each_backend([&](Backend& b) {
      b.gelu_forward(out.on(b), in.on(b), count);
      b.gelu_backward(d_in.on(b), d_out.on(b), in.on(b), count);
    });
    expect_match(out, kActivation, "gelu_forward");
    expect_match(d_in, kActivation, "gelu_backward");
  }
}

TEST_F(ActivationConformance, SwiGlu) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    PairedBuffer gate(random_floats(count, 64, -6.0f, 6.0f)), up(random_floats(count, 65));
    PairedBuffer out(count), d_out(random_floats(count, 66));
    PairedBuffer d_gate(random_floats(count, 67)), d_up(random_floats(count, 68));
    for_each_backend([&](Backend& b) {
      b.swiglu_forward(out.on(b), gate.on(b), up.on(b), count);
      b.swiglu_backward(d_gate.on(b), d_up.on(b), d_out.on(b), gate.on(b), up.on(b), count);
    });
    expect_match(out, kActivation, "swiglu_forward");
    expect_match(d_gate, kActivation, "swiglu_backward d_gate");
    expect_match(d_up, kActivation, "swiglu_backward d_up");
  }
}

}  // namespace
}  // namespace tessera::test
