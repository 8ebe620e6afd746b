// Linear layer: the three cuBLAS GEMMs (row-major through the transpose trick) and the bias.
#include "conformance_support.hpp"

namespace tessera::test {
namespace {

using LinearConformance = DeviceConformance;

struct Shape {
  int rows, in_features, out_features;
};
const Shape kShapes[] = {{1, 5, 17}, {7, 17, 5},     {33, 64, 64},   {7, 64, 1},
                         {1, 1, 1},  {257, 17, 300}, {130, 300, 64}, {33, 5, 768}};

testing::Message describe(Shape s) {
  return testing::Message() << "rows=" << s.rows << " in=" << s.in_features
                            << " out=" << s.out_features;
}

// Every output is a dot product of length k (in_features for the forward, out_features for
// d_in, rows for d_weight and d_bias) of values in [-1, 1]: reduction_tolerance(k, 1). Terms
// already in the output (bias, accumulated gradient) are single adds on top.
TEST_F(LinearConformance, ForwardWithAndWithoutBias) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::size_t in_count = static_cast<std::size_t>(s.rows) * s.in_features;
    const std::size_t out_count = static_cast<std::size_t>(s.rows) * s.out_features;
    const std::size_t weight_count = static_cast<std::size_t>(s.out_features) * s.in_features;
    PairedBuffer in(random_floats(in_count, 41)), weight(random_floats(weight_count, 42));
    PairedBuffer bias(random_floats(static_cast<std::size_t>(s.out_features), 43));
    PairedBuffer out(random_floats(out_count, 44)), out_no_bias(random_floats(out_count, 45));
    for_each_backend([&](Backend& b) {
      b.linear_forward(out.on(b), in.on(b), weight.on(b), bias.on(b), s.rows, s.in_features,
                       s.out_features);
      b.linear_forward(out_no_bias.on(b), in.on(b), weight.on(b), nullptr, s.rows, s.in_features,
                       s.out_features);
    });
    expect_match(out, reduction_tolerance(s.in_features + 1, 1.0), "linear_forward with bias");
    expect_match(out_no_bias, reduction_tolerance(s.in_features, 1.0), "linear_forward");
  }
}

TEST_F(LinearConformance, BackwardAccumulatesParameterGradients) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::size_t in_count = static_cast<std::size_t>(s.rows) * s.in_features;
    const std::size_t out_count = static_cast<std::size_t>(s.rows) * s.out_features;
    const std::size_t weight_count = static_cast<std::size_t>(s.out_features) * s.in_features;
    const std::size_t out_features = static_cast<std::size_t>(s.out_features);
    PairedBuffer in(random_floats(in_count, 46)), weight(random_floats(weight_count, 47));
    PairedBuffer d_out(random_floats(out_count, 48)), d_in(random_floats(in_count, 49));
    PairedBuffer d_weight(random_floats(weight_count, 50));  // += onto existing gradients
    PairedBuffer d_bias(random_floats(out_features, 51));
    for_each_backend([&](Backend& b) {
      b.linear_backward(d_in.on(b), d_weight.on(b), d_bias.on(b), d_out.on(b), in.on(b),
                        weight.on(b), s.rows, s.in_features, s.out_features);
    });
    expect_match(d_in, reduction_tolerance(s.out_features, 1.0), "linear_backward d_in");
    expect_match(d_weight, reduction_tolerance(s.rows + 1, 1.0), "linear_backward d_weight");
    expect_match(d_bias, reduction_tolerance(s.rows + 1, 1.0), "linear_backward d_bias");

    // Without d_in and d_bias (the first layer of a model, and layers without bias).
    for_each_backend([&](Backend& b) {
      b.linear_backward(nullptr, d_weight.on(b), nullptr, d_out.on(b), in.on(b), weight.on(b),
                        s.rows, s.in_features, s.out_features);
    });
    expect_match(d_weight, reduction_tolerance(2 * s.rows + 1, 1.0),
                 "linear_backward d_weight, accumulated twice");
    expect_match(d_in, reduction_tolerance(s.out_features, 1.0), "linear_backward d_in untouched");
  }
}

}  // namespace
}  // namespace tessera::test
