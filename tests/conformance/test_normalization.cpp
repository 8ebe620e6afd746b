// LayerNorm and RMSNorm, forward and backward, on shapes with odd row counts and widths.
#include "conformance_support.hpp"

namespace tessera::test {
namespace {

using NormalizationConformance = DeviceConformance;

struct Shape {
  int rows, dim;
};
const Shape kShapes[] = {{1, 5}, {7, 17}, {33, 64}, {1, 64}, {7, 5}, {257, 300}, {130, 768}};
constexpr float kEps = 1e-5f;

testing::Message describe(Shape s) {
  return testing::Message() << "rows=" << s.rows << " dim=" << s.dim;
}

// Inputs U(-1, 1): std ~0.58, so rstd ~1.7 and |xhat| <= ~1.8; gains U(0.5, 1.5).
// Forward: mean and variance are sums of dim terms of size ~1; the output is O(2).
Tolerance forward_tolerance(int dim) { return reduction_tolerance(dim, 2.0); }
// d_in: two row sums of dim terms |d_out gain xhat| <= ~3, scaled by rstd ~1.7.
Tolerance input_grad_tolerance(int dim) { return reduction_tolerance(dim, 8.0); }
// d_gain, d_bias: sums over rows of terms <= ~3 (the CPU's saved statistics are given to both).
Tolerance parameter_grad_tolerance(int rows) { return reduction_tolerance(rows, 3.0); }

TEST_F(NormalizationConformance, LayerNormForwardAndBackward) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::size_t width = static_cast<std::size_t>(s.rows) * s.dim;
    const std::size_t dim = static_cast<std::size_t>(s.dim),
                      rows = static_cast<std::size_t>(s.rows);
    PairedBuffer in(random_floats(width, 21)), gain(random_floats(dim, 22, 0.5f, 1.5f));
    PairedBuffer bias(random_floats(dim, 23)), out(width), mean(rows), rstd(rows);
    for_each_backend([&](Backend& b) {
      b.layernorm_forward(out.on(b), mean.on(b), rstd.on(b), in.on(b), gain.on(b), bias.on(b),
                          s.rows, s.dim, kEps);
    });
    expect_match(out, forward_tolerance(s.dim), "layernorm_forward out");
    expect_match(mean, reduction_tolerance(s.dim, 1.0), "layernorm_forward mean");
    expect_match(rstd, reduction_tolerance(s.dim, 2.0), "layernorm_forward rstd");

    // Backward from the same saved statistics on both sides, so it is tested on its own.
    PairedBuffer saved_mean(mean.cpu_values()), saved_rstd(rstd.cpu_values());
    PairedBuffer d_out(random_floats(width, 24)), d_in(random_floats(width, 25));
    PairedBuffer d_gain(random_floats(dim, 26)), d_bias(random_floats(dim, 27));
    for_each_backend([&](Backend& b) {
      b.layernorm_backward(d_in.on(b), d_gain.on(b), d_bias.on(b), d_out.on(b), in.on(b),
                           gain.on(b), saved_mean.on(b), saved_rstd.on(b), s.rows, s.dim);
    });
    expect_match(d_in, input_grad_tolerance(s.dim), "layernorm_backward d_in");
    expect_match(d_gain, parameter_grad_tolerance(s.rows), "layernorm_backward d_gain");
    expect_match(d_bias, parameter_grad_tolerance(s.rows), "layernorm_backward d_bias");
  }
}

TEST_F(NormalizationConformance, LayerNormWithoutBias) {
  const Shape s{7, 17};
  const std::size_t width = 7 * 17;
  PairedBuffer in(random_floats(width, 28)), gain(random_floats(17, 29, 0.5f, 1.5f));
  PairedBuffer out(width), mean(7), rstd(7), d_out(random_floats(width, 30)), d_in(width);
  PairedBuffer d_gain(17);
  for_each_backend([&](Backend& b) {
    b.layernorm_forward(out.on(b), mean.on(b), rstd.on(b), in.on(b), gain.on(b), nullptr, s.rows,
                        s.dim, kEps);
    b.layernorm_backward(d_in.on(b), d_gain.on(b), nullptr, d_out.on(b), in.on(b), gain.on(b),
                         mean.on(b), rstd.on(b), s.rows, s.dim);
  });
  expect_match(out, forward_tolerance(s.dim), "layernorm_forward without bias");
  // Here the backward also sees each side's own statistics: add the forward's error.
  expect_match(d_in, input_grad_tolerance(2 * s.dim), "layernorm_backward d_in without bias");
  expect_match(d_gain, reduction_tolerance(s.rows + s.dim, 3.0), "layernorm_backward d_gain");
}

TEST_F(NormalizationConformance, RmsNormForwardAndBackward) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::size_t width = static_cast<std::size_t>(s.rows) * s.dim;
    const std::size_t dim = static_cast<std::size_t>(s.dim),
                      rows = static_cast<std::size_t>(s.rows);
    PairedBuffer in(random_floats(width, 31)), gain(random_floats(dim, 32, 0.5f, 1.5f));
    PairedBuffer out(width), rstd(rows);
    for_each_backend([&](Backend& b) {
      b.rmsnorm_forward(out.on(b), rstd.on(b), in.on(b), gain.on(b), s.rows, s.dim, kEps);
    });
    expect_match(out, forward_tolerance(s.dim), "rmsnorm_forward out");
    expect_match(rstd, reduction_tolerance(s.dim, 2.0), "rmsnorm_forward rstd");

    PairedBuffer saved_rstd(rstd.cpu_values());
    PairedBuffer d_out(random_floats(width, 33)), d_in(random_floats(width, 34));
    PairedBuffer d_gain(random_floats(dim, 35));
    for_each_backend([&](Backend& b) {
      b.rmsnorm_backward(d_in.on(b), d_gain.on(b), d_out.on(b), in.on(b), gain.on(b),
                         saved_rstd.on(b), s.rows, s.dim);
    });
    expect_match(d_in, input_grad_tolerance(s.dim), "rmsnorm_backward d_in");
    expect_match(d_gain, parameter_grad_tolerance(s.rows), "rmsnorm_backward d_gain");
  }
}

}  // namespace
}  // namespace tessera::test
