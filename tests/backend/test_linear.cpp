// Linear layer: forward vs. the double reference (with and without bias), backward vs. finite
// differences for d_in, d_weight and d_bias, accumulate/overwrite semantics, null outputs.
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using LinearTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(LinearTest);

struct LinearShape {
  int rows, in_features, out_features;
};
// Narrow and wide layers, single rows and rows that fill no vector or block evenly.
const LinearShape kShapes[] = {{1, 5, 3}, {7, 17, 5}, {33, 64, 17}, {33, 5, 64}, {5, 7, 300}};

// Dot products of <= 64 terms of magnitude <= 1 in fp32 (blocked, possibly FMA): absolute error
// well below 64 * eps ~ 8e-6 of the sum of |terms|; the relative part covers large outputs.
constexpr Tolerance kTolerance{1e-5, 16.0};

struct LinearInputs {
  std::vector<float> in, weight, bias, d_out;
};

LinearInputs make_inputs(const LinearShape& s) {
  return {random_floats(static_cast<std::size_t>(s.rows) * s.in_features, 41),
          random_floats(static_cast<std::size_t>(s.out_features) * s.in_features, 42),
          random_floats(s.out_features, 43),
          random_floats(static_cast<std::size_t>(s.rows) * s.out_features, 44)};
}

testing::Message describe(const LinearShape& s) {
  return testing::Message() << "rows=" << s.rows << " in=" << s.in_features
                            << " out=" << s.out_features;
}

TEST_P(LinearTest, ForwardMatchesReference) {
  for (const LinearShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x = make_inputs(s);
    DeviceBuffer in(backend(), x.in), weight(backend(), x.weight), bias(backend(), x.bias);
    DeviceBuffer out(backend(), constant_floats(x.d_out.size(), kGarbage));
    backend().linear_forward(out.get(), in.get(), weight.get(), bias.get(), s.rows, s.in_features,
                             s.out_features);
    expect_close(out.to_host(),
                 reference::linear(to_double(x.in), to_double(x.weight), to_double(x.bias), s.rows,
                                   s.in_features, s.out_features),
                 kTolerance, "linear_forward with bias");
    backend().linear_forward(out.get(), in.get(), weight.get(), nullptr, s.rows, s.in_features,
                             s.out_features);
    expect_close(out.to_host(),
                 reference::linear(to_double(x.in), to_double(x.weight), {}, s.rows, s.in_features,
                                   s.out_features),
                 kTolerance, "linear_forward without bias");
  }
}

// The MLP's first layer with its GELU: pre must be the linear layer's output (gelu_backward reads
// it) and act its GELU, with and without a bias; the last shape crosses the parallel threshold.
TEST_P(LinearTest, LinearGeluForwardKeepsThePreActivationAndAppliesGelu) {
  std::vector<LinearShape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({300, 16, 160});
  for (const LinearShape& s : shapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x = make_inputs(s);
    DeviceBuffer in(backend(), x.in), weight(backend(), x.weight), bias(backend(), x.bias);
    DeviceBuffer pre(backend(), constant_floats(x.d_out.size(), kGarbage));
    DeviceBuffer act(backend(), constant_floats(x.d_out.size(), kGarbage));
    for (const bool with_bias : {true, false}) {
      backend().linear_gelu_forward(pre.get(), act.get(), in.get(), weight.get(),
                                    with_bias ? bias.get() : nullptr, s.rows, s.in_features,
                                    s.out_features);
      const Vector expected_pre = reference::linear(to_double(x.in), to_double(x.weight),
                                                    with_bias ? to_double(x.bias) : Vector{},
                                                    s.rows, s.in_features, s.out_features);
      expect_close(pre.to_host(), expected_pre, kTolerance, "linear_gelu_forward pre");
      expect_close(act.to_host(), reference::gelu(expected_pre), kTolerance,
                   "linear_gelu_forward act");
    }
  }
}

TEST_P(LinearTest, BackwardMatchesFiniteDifferences) {
  for (const LinearShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x = make_inputs(s);
    const Vector in = to_double(x.in), weight = to_double(x.weight), bias = to_double(x.bias);
    const Vector w = to_double(x.d_out);
    auto forward = [&](const Vector& i, const Vector& wt, const Vector& b) {
      return reference::linear(i, wt, b, s.rows, s.in_features, s.out_features);
    };
    const Vector fd_in = finite_difference_gradient(
        [&](const Vector& v) { return forward(v, weight, bias); }, in, w);
    const Vector fd_weight = finite_difference_gradient(
        [&](const Vector& v) { return forward(in, v, bias); }, weight, w);
    const Vector fd_bias = finite_difference_gradient(
        [&](const Vector& v) { return forward(in, weight, v); }, bias, w);

    DeviceBuffer din(backend(), x.in), dweight(backend(), x.weight), d_out(backend(), x.d_out);
    DeviceBuffer d_in(backend(), constant_floats(x.in.size(), kGarbage));
    DeviceBuffer d_weight(backend(), x.weight.size()), d_bias(backend(), x.bias.size());
    backend().linear_backward(d_in.get(), d_weight.get(), d_bias.get(), d_out.get(), din.get(),
                              dweight.get(), s.rows, s.in_features, s.out_features);
    expect_close(d_in.to_host(), fd_in, kTolerance, "linear d_in");
    expect_close(d_weight.to_host(), fd_weight, kTolerance, "linear d_weight");
    expect_close(d_bias.to_host(), fd_bias, kTolerance, "linear d_bias");

    // Second call: d_in is overwritten, parameter gradients add up to twice the gradient.
    backend().linear_backward(d_in.get(), d_weight.get(), d_bias.get(), d_out.get(), din.get(),
                              dweight.get(), s.rows, s.in_features, s.out_features);
    expect_close(d_in.to_host(), fd_in, kTolerance, "linear d_in overwrites");
    expect_close(d_weight.to_host(), scaled(fd_weight, 2.0), twice(kTolerance),
                 "linear d_weight accumulates");
    expect_close(d_bias.to_host(), scaled(fd_bias, 2.0), twice(kTolerance),
                 "linear d_bias accumulates");
  }
}

TEST_P(LinearTest, BackwardSkipsNullInputGradientAndBias) {
  const LinearShape s{7, 17, 5};
  const LinearInputs x = make_inputs(s);
  const Vector in = to_double(x.in);
  const Vector fd_weight = finite_difference_gradient(
      [&](const Vector& v) {
        return reference::linear(in, v, {}, s.rows, s.in_features, s.out_features);
      },
      to_double(x.weight), to_double(x.d_out));
  DeviceBuffer din(backend(), x.in), dweight(backend(), x.weight), d_out(backend(), x.d_out);
  DeviceBuffer d_weight(backend(), x.weight.size());
  backend().linear_backward(nullptr, d_weight.get(), nullptr, d_out.get(), din.get(), dweight.get(),
                            s.rows, s.in_features, s.out_features);
  expect_close(d_weight.to_host(), fd_weight, kTolerance, "linear d_weight, null d_in and d_bias");
}

}  // namespace
}  // namespace tessera::test
