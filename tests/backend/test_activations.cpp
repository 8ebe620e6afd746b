// GELU (tanh approximation) and SwiGLU: forward vs. the double reference, backward vs. finite
// differences, overwrite semantics of the input gradients.
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using ActivationTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(ActivationTest);

// Small counts for finite differences; 100003 also crosses the parallel threshold (forward only).
const std::size_t kCounts[] = {1, 7, 33, 1000};
constexpr std::size_t kLargeCount = 100003;

// A handful of fp32 libm calls and products: ~ 8 eps relative, plus an absolute floor for values
// near zero where tanh / exp cancel.
constexpr Tolerance kTolerance{1e-6, 16.0};

TEST_P(ActivationTest, GeluForwardMatchesReference) {
  for (std::size_t count : {kCounts[0], kCounts[1], kCounts[2], kCounts[3], kLargeCount}) {
    SCOPED_TRACE(count);
    const std::vector<float> x = random_floats(count, 51, -6.0f, 6.0f);
    DeviceBuffer in(backend(), x), out(backend(), constant_floats(count, kGarbage));
    backend().gelu_forward(out.get(), in.get(), count);
    expect_close(out.to_host(), reference::gelu(to_double(x)), kTolerance, "gelu_forward");
  }
}

TEST_P(ActivationTest, GeluBackwardMatchesFiniteDifferences) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    const std::vector<float> x = random_floats(count, 52, -6.0f, 6.0f);
    const std::vector<float> w = random_floats(count, 53);
    const Vector fd = finite_difference_gradient(reference::gelu, to_double(x), to_double(w));
    DeviceBuffer in(backend(), x), d_out(backend(), w);
    DeviceBuffer d_in(backend(), constant_floats(count, kGarbage));
    backend().gelu_backward(d_in.get(), d_out.get(), in.get(), count);
    expect_close(d_in.to_host(), fd, kTolerance, "gelu_backward");
  }
}

TEST_P(ActivationTest, SwigluForwardMatchesReference) {
  for (std::size_t count : {kCounts[0], kCounts[1], kCounts[2], kCounts[3], kLargeCount}) {
    SCOPED_TRACE(count);
    std::vector<float> gate = random_floats(count, 54, -8.0f, 8.0f);
    gate[0] = -100.0f;  // exp(100) overflows fp32: the sigmoid must still give 0, not NaN
    const std::vector<float> up = random_floats(count, 55);
    DeviceBuffer dgate(backend(), gate), dup(backend(), up);
    DeviceBuffer out(backend(), constant_floats(count, kGarbage));
    backend().swiglu_forward(out.get(), dgate.get(), dup.get(), count);
    expect_close(out.to_host(), reference::swiglu(to_double(gate), to_double(up)), kTolerance,
                 "swiglu_forward");
  }
}

TEST_P(ActivationTest, SwigluBackwardMatchesFiniteDifferences) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    std::vector<float> gate = random_floats(count, 56, -8.0f, 8.0f);
    gate[0] = -100.0f;
    const std::vector<float> up = random_floats(count, 57), w = random_floats(count, 58);
    const Vector g = to_double(gate), u = to_double(up);
    const Vector fd_gate = finite_difference_gradient(
        [&](const Vector& v) { return reference::swiglu(v, u); }, g, to_double(w));
    const Vector fd_up = finite_difference_gradient(
        [&](const Vector& v) { return reference::swiglu(g, v); }, u, to_double(w));
    DeviceBuffer dgate(backend(), gate), dup(backend(), up), d_out(backend(), w);
    DeviceBuffer d_gate(backend(), constant_floats(count, kGarbage));
    DeviceBuffer d_up(backend(), constant_floats(count, kGarbage));
    backend().swiglu_backward(d_gate.get(), d_up.get(), d_out.get(), dgate.get(), dup.get(), count);
    expect_close(d_gate.to_host(), fd_gate, kTolerance, "swiglu d_gate");
    expect_close(d_up.to_host(), fd_up, kTolerance, "swiglu d_up");
  }
}

}  // namespace
}  // namespace tessera::test
