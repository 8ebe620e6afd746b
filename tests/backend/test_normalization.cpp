// LayerNorm and RMSNorm: forward (and saved statistics) vs. the double reference, backward vs.
// finite differences for the input, gain and bias, accumulate/overwrite semantics.
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using NormalizationTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(NormalizationTest);

struct NormShape {
  int rows, dim;
  float offset;  ///< added to every input: a large mean tests the variance's stable form
  float eps;     ///< a large eps checks where it enters (inside the square root)
};
const NormShape kShapes[] = {
    {1, 5, 0.0f, 1e-5f}, {7, 17, 0.0f, 0.5f}, {33, 64, 0.0f, 1e-5f}, {7, 64, 30.0f, 1e-5f}};

// Row reductions of length dim <= 64 in fp32 with rstd ~ 2: errors of a few dozen eps on O(1)
// outputs; gradients add a second reduction. An input offset o puts an error of ~ dim eps o into
// the fp32 mean (that is what fp32 reductions cost), amplified by rstd: the absolute part grows
// with the offset.
Tolerance forward_tolerance(const NormShape& s) { return {2e-6 * (1.0 + s.offset), 32.0}; }
Tolerance gradient_tolerance(const NormShape& s) { return {2e-5 * (1.0 + s.offset), 64.0}; }

struct NormInputs {
  std::vector<float> in, gain, bias, d_out;
};

NormInputs make_inputs(const NormShape& s) {
  const std::size_t count = static_cast<std::size_t>(s.rows) * s.dim;
  NormInputs inputs{random_floats(count, 31), random_floats(s.dim, 32, 0.5f, 1.5f),
                    random_floats(s.dim, 33), random_floats(count, 34)};
  for (float& x : inputs.in) x += s.offset;
  return inputs;
}

TEST_P(NormalizationTest, LayerNormForwardMatchesReference) {
  for (const NormShape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "rows=" << s.rows << " dim=" << s.dim
                                    << " offset=" << s.offset << " eps=" << s.eps);
    const NormInputs x = make_inputs(s);
    for (const bool with_bias : {true, false}) {
      const std::vector<float> bias = with_bias ? x.bias : std::vector<float>{};
      const reference::NormResult ref = reference::layernorm(to_double(x.in), to_double(x.gain),
                                                             to_double(bias), s.rows, s.dim, s.eps);
      DeviceBuffer in(backend(), x.in), gain(backend(), x.gain), dbias(backend(), x.bias);
      DeviceBuffer out(backend(), constant_floats(x.in.size(), kGarbage));
      DeviceBuffer mean(backend(), s.rows), rstd(backend(), s.rows);
      backend().layernorm_forward(out.get(), mean.get(), rstd.get(), in.get(), gain.get(),
                                  with_bias ? dbias.get() : nullptr, s.rows, s.dim, s.eps);
      expect_close(out.to_host(), ref.out, forward_tolerance(s), "layernorm out");
      expect_close(mean.to_host(), ref.mean, forward_tolerance(s), "layernorm mean");
      expect_close(rstd.to_host(), ref.rstd, forward_tolerance(s), "layernorm rstd");
    }
  }
}

TEST_P(NormalizationTest, LayerNormBackwardMatchesFiniteDifferences) {
  for (const NormShape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "rows=" << s.rows << " dim=" << s.dim
                                    << " offset=" << s.offset << " eps=" << s.eps);
    const NormInputs x = make_inputs(s);
    const Vector in = to_double(x.in), gain = to_double(x.gain), bias = to_double(x.bias);
    const Vector w = to_double(x.d_out);
    auto forward = [&](const Vector& i, const Vector& g, const Vector& b) {
      return reference::layernorm(i, g, b, s.rows, s.dim, s.eps).out;
    };
    const Vector fd_in =
        finite_difference_gradient([&](const Vector& v) { return forward(v, gain, bias); }, in, w);
    const Vector fd_gain =
        finite_difference_gradient([&](const Vector& v) { return forward(in, v, bias); }, gain, w);
    const Vector fd_bias =
        finite_difference_gradient([&](const Vector& v) { return forward(in, gain, v); }, bias, w);

    DeviceBuffer din(backend(), x.in), dgain(backend(), x.gain), dbias(backend(), x.bias);
    DeviceBuffer out(backend(), x.in.size()), mean(backend(), s.rows), rstd(backend(), s.rows);
    backend().layernorm_forward(out.get(), mean.get(), rstd.get(), din.get(), dgain.get(),
                                dbias.get(), s.rows, s.dim, s.eps);
    DeviceBuffer d_out(backend(), x.d_out);
    DeviceBuffer d_in(backend(), constant_floats(x.in.size(), kGarbage));
    DeviceBuffer d_gain(backend(), s.dim), d_bias(backend(), s.dim);
    backend().layernorm_backward(d_in.get(), d_gain.get(), d_bias.get(), d_out.get(), din.get(),
                                 dgain.get(), mean.get(), rstd.get(), s.rows, s.dim);
    expect_close(d_in.to_host(), fd_in, gradient_tolerance(s), "layernorm d_in");
    expect_close(d_gain.to_host(), fd_gain, gradient_tolerance(s), "layernorm d_gain");
    expect_close(d_bias.to_host(), fd_bias, gradient_tolerance(s), "layernorm d_bias");

    backend().layernorm_backward(d_in.get(), d_gain.get(), d_bias.get(), d_out.get(), din.get(),
                                 dgain.get(), mean.get(), rstd.get(), s.rows, s.dim);
    expect_close(d_in.to_host(), fd_in, gradient_tolerance(s), "layernorm d_in overwrites");
    expect_close(d_gain.to_host(), scaled(fd_gain, 2.0), twice(gradient_tolerance(s)),
                 "layernorm d_gain accumulates");
    expect_close(d_bias.to_host(), scaled(fd_bias, 2.0), twice(gradient_tolerance(s)),
                 "layernorm d_bias accumulates");
  }
}

TEST_P(NormalizationTest, LayerNormBackwardWithoutBias) {
  const NormShape s{7, 17, 0.0f, 1e-5f};
  const NormInputs x = make_inputs(s);
  const Vector in = to_double(x.in), gain = to_double(x.gain);
  const Vector fd_gain = finite_difference_gradient(
      [&](const Vector& g) { return reference::layernorm(in, g, {}, s.rows, s.dim, s.eps).out; },
      gain, to_double(x.d_out));
  DeviceBuffer din(backend(), x.in), dgain(backend(), x.gain);
  DeviceBuffer out(backend(), x.in.size()), mean(backend(), s.rows), rstd(backend(), s.rows);
  backend().layernorm_forward(out.get(), mean.get(), rstd.get(), din.get(), dgain.get(), nullptr,
                              s.rows, s.dim, s.eps);
  DeviceBuffer d_out(backend(), x.d_out), d_in(backend(), x.in.size()), d_gain(backend(), s.dim);
  backend().layernorm_backward(d_in.get(), d_gain.get(), nullptr, d_out.get(), din.get(),
                               dgain.get(), mean.get(), rstd.get(), s.rows, s.dim);
  expect_close(d_gain.to_host(), fd_gain, gradient_tolerance(s), "layernorm d_gain without bias");
}

TEST_P(NormalizationTest, RmsNormForwardMatchesReference) {
  for (const NormShape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "rows=" << s.rows << " dim=" << s.dim
                                    << " offset=" << s.offset << " eps=" << s.eps);
    const NormInputs x = make_inputs(s);
    const reference::NormResult ref =
        reference::rmsnorm(to_double(x.in), to_double(x.gain), s.rows, s.dim, s.eps);
    DeviceBuffer in(backend(), x.in), gain(backend(), x.gain), rstd(backend(), s.rows);
    DeviceBuffer out(backend(), constant_floats(x.in.size(), kGarbage));
    backend().rmsnorm_forward(out.get(), rstd.get(), in.get(), gain.get(), s.rows, s.dim, s.eps);
    expect_close(out.to_host(), ref.out, forward_tolerance(s), "rmsnorm out");
    expect_close(rstd.to_host(), ref.rstd, forward_tolerance(s), "rmsnorm rstd");
  }
}

TEST_P(NormalizationTest, RmsNormBackwardMatchesFiniteDifferences) {
  for (const NormShape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "rows=" << s.rows << " dim=" << s.dim
                                    << " offset=" << s.offset << " eps=" << s.eps);
    const NormInputs x = make_inputs(s);
    const Vector in = to_double(x.in), gain = to_double(x.gain), w = to_double(x.d_out);
    const Vector fd_in = finite_difference_gradient(
        [&](const Vector& v) { return reference::rmsnorm(v, gain, s.rows, s.dim, s.eps).out; }, in,
        w);
    const Vector fd_gain = finite_difference_gradient(
        [&](const Vector& v) { return reference::rmsnorm(in, v, s.rows, s.dim, s.eps).out; }, gain,
        w);
    DeviceBuffer din(backend(), x.in), dgain(backend(), x.gain);
    DeviceBuffer out(backend(), x.in.size()), rstd(backend(), s.rows);
    backend().rmsnorm_forward(out.get(), rstd.get(), din.get(), dgain.get(), s.rows, s.dim, s.eps);
    DeviceBuffer d_out(backend(), x.d_out), d_gain(backend(), s.dim);
    DeviceBuffer d_in(backend(), constant_floats(x.in.size(), kGarbage));
    backend().rmsnorm_backward(d_in.get(), d_gain.get(), d_out.get(), din.get(), dgain.get(),
                               rstd.get(), s.rows, s.dim);
    expect_close(d_in.to_host(), fd_in, gradient_tolerance(s), "rmsnorm d_in");
    expect_close(d_gain.to_host(), fd_gain, gradient_tolerance(s), "rmsnorm d_gain");
    backend().rmsnorm_backward(d_in.get(), d_gain.get(), d_out.get(), din.get(), dgain.get(),
                               rstd.get(), s.rows, s.dim);
    expect_close(d_in.to_host(), fd_in, gradient_tolerance(s), "rmsnorm d_in overwrites");
    expect_close(d_gain.to_host(), scaled(fd_gain, 2.0), twice(gradient_tolerance(s)),
                 "rmsnorm d_gain accumulates");
  }
}

}  // namespace
}  // namespace tessera::test
