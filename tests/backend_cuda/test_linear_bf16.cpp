// Linear layer in bf16 mixed precision (GemmPrecision::bf16) against the CPU backend in fp32.
//
// Why these bounds. The bf16 backend rounds each GEMM operand to bf16 (unit roundoff u = 2^-8:
// 8 significant bits) and accumulates in fp32. A product of two bf16 values has at most 16
// significant bits, so it is exact in fp32: the bf16 GEMM *is* an fp32 GEMM of the rounded
// operands. Hence two checks:
//  1. Against the CPU fed the same operands rounded to bf16 on the host: the fp32 tolerance of
//     test_linear.cpp, reduction_tolerance(k, 1). This is as strict as the fp32 test and also
//     proves the rounding happens (unrounded operands differ by ~u sqrt(k) / 3 per output, far
//     above 4 k eps for every k here).
//  2. Against the CPU on the unrounded operands (the fp32 reference): each term a_i b_i of a
//     length-k dot product picks up a relative error d_i = (1 + e_a)(1 + e_b) - 1, |d_i| <= 2u +
//     u^2, so the output error is sum_i a_i b_i d_i. For one term (k = 1) that is at most 2u + u^2
//     relative. For many terms the d_i are independent with mean zero, a random walk: the error
//     has standard deviation u sqrt(2/3) sqrt(sum_i (a_i b_i)^2), while the output itself, a sum
//     of random-sign terms, has norm about sqrt(sum_i (a_i b_i)^2): the error relative to the
//     output, in the Euclidean norm over all outputs, is about u sqrt(2/3) = 0.82u, whatever k.
//     The bound 3u (1.2e-2) covers the k = 1 worst case and leaves 3.6x over the random walk.
//     A missing bias (~0.58 rms against outputs of rms ~sqrt(k)/3) or a transposed or shifted
//     operand (an unrelated result, ~1.4 relative) is off by 8x the bound or more; the last test
//     checks that such results are indeed rejected. Measured on an H100: at most 0.19 of the
//     bound (0.57u); a missing bias 0.24, a transposed weight 1.3.
#include "cuda_backends.hpp"

namespace tessera::test {
namespace {

using LinearBf16Conformance = DeviceConformance;

constexpr double kRelativeBound = 3.0 * kBf16UnitRoundoff;

struct Shape {
  int rows, in_features, out_features;
};
const Shape kShapes[] = {{1, 5, 17}, {7, 17, 5},     {33, 64, 64},   {7, 64, 1},
                         {1, 1, 1},  {257, 17, 300}, {130, 300, 64}, {33, 5, 768}};

testing::Message describe(Shape s) {
  return testing::Message() << "rows=" << s.rows << " in=" << s.in_features
                            << " out=" << s.out_features;
}

/// Inputs of one linear layer, uniform in [-1, 1).
struct LinearInputs {
  explicit LinearInputs(Shape s)
      : in(random_floats(static_cast<std::size_t>(s.rows) * s.in_features, 141)),
        weight(random_floats(static_cast<std::size_t>(s.out_features) * s.in_features, 142)),
        bias(random_floats(static_cast<std::size_t>(s.out_features), 143)),
        d_out(random_floats(static_cast<std::size_t>(s.rows) * s.out_features, 144)),
        d_weight(random_floats(weight.size(), 145)) {}
  std::vector<float> in, weight, bias, d_out, d_weight;
};

/// out = in @ weight^T + bias on `backend` (CPU, or the bf16 CUDA backend).
std::vector<float> forward(Backend& backend, Shape s, const std::vector<float>& in,
                           const std::vector<float>& weight, const std::vector<float>* bias) {
  PairedBuffer in_buffer(in, cuda_bf16_backend()), weight_buffer(weight, cuda_bf16_backend());
  PairedBuffer bias_buffer(bias != nullptr ? *bias : std::vector<float>{}, cuda_bf16_backend());
  PairedBuffer out(static_cast<std::size_t>(s.rows) * s.out_features, cuda_bf16_backend());
  backend.linear_forward(out.on(backend), in_buffer.on(backend), weight_buffer.on(backend),
                         bias != nullptr ? bias_buffer.on(backend) : nullptr, s.rows, s.in_features,
                         s.out_features);
  return &backend == &cpu_backend() ? out.cpu_values() : out.device_values();
}

struct Gradients {
  std::vector<float> d_in, d_weight, d_bias;
};

/// linear_backward on `backend`; d_weight accumulates onto `inputs.d_weight`, d_bias onto zero.
Gradients backward(Backend& backend, Shape s, const LinearInputs& inputs,
                   const std::vector<float>& in, const std::vector<float>& weight,
                   const std::vector<float>& d_out) {
  Backend& device = cuda_bf16_backend();
  PairedBuffer in_buffer(in, device), weight_buffer(weight, device), d_out_buffer(d_out, device);
  PairedBuffer d_weight(inputs.d_weight, device);
  PairedBuffer d_in(in.size(), device), d_bias(static_cast<std::size_t>(s.out_features), device);
  backend.linear_backward(d_in.on(backend), d_weight.on(backend), d_bias.on(backend),
                          d_out_buffer.on(backend), in_buffer.on(backend),
                          weight_buffer.on(backend), s.rows, s.in_features, s.out_features);
  const bool cpu = &backend == &cpu_backend();
  return {cpu ? d_in.cpu_values() : d_in.device_values(),
          cpu ? d_weight.cpu_values() : d_weight.device_values(),
          cpu ? d_bias.cpu_values() : d_bias.device_values()};
}

TEST_F(LinearBf16Conformance, ForwardIsFp32OfTheRoundedOperands) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x(s);
    const auto in16 = round_to_bf16(x.in), weight16 = round_to_bf16(x.weight);
    expect_match(forward(cuda_bf16_backend(), s, x.in, x.weight, &x.bias),
                 forward(cpu_backend(), s, in16, weight16, &x.bias),
                 reduction_tolerance(s.in_features + 1, 1.0), "bf16 linear_forward with bias");
    expect_match(forward(cuda_bf16_backend(), s, x.in, x.weight, nullptr),
                 forward(cpu_backend(), s, in16, weight16, nullptr),
                 reduction_tolerance(s.in_features, 1.0), "bf16 linear_forward");
  }
}

TEST_F(LinearBf16Conformance, BackwardIsFp32OfTheRoundedOperands) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x(s);
    const Gradients cuda = backward(cuda_bf16_backend(), s, x, x.in, x.weight, x.d_out);
    const Gradients rounded = backward(cpu_backend(), s, x, round_to_bf16(x.in),
                                       round_to_bf16(x.weight), round_to_bf16(x.d_out));
    // The bias gradient is a column sum outside any GEMM: fp32, from the unrounded d_out.
    const Gradients exact = backward(cpu_backend(), s, x, x.in, x.weight, x.d_out);
    expect_match(cuda.d_in, rounded.d_in, reduction_tolerance(s.out_features, 1.0), "bf16 d_in");
    expect_match(cuda.d_weight, rounded.d_weight, reduction_tolerance(s.rows + 1, 1.0),
                 "bf16 d_weight");
    expect_match(cuda.d_bias, exact.d_bias, reduction_tolerance(s.rows, 1.0), "bf16 d_bias");
  }
}

TEST_F(LinearBf16Conformance, CloseToTheFp32Result) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x(s);
    expect_relative_error_within(forward(cuda_bf16_backend(), s, x.in, x.weight, &x.bias),
                                 forward(cpu_backend(), s, x.in, x.weight, &x.bias), kRelativeBound,
                                 0.0, "bf16 vs fp32 linear_forward");
    const Gradients cuda = backward(cuda_bf16_backend(), s, x, x.in, x.weight, x.d_out);
    const Gradients cpu = backward(cpu_backend(), s, x, x.in, x.weight, x.d_out);
    expect_relative_error_within(cuda.d_in, cpu.d_in, kRelativeBound, 0.0, "bf16 vs fp32 d_in");
    // d_weight = (its previous value, in fp32) + the GEMM: no larger relative error than the GEMM.
    expect_relative_error_within(cuda.d_weight, cpu.d_weight, kRelativeBound, 0.0,
                                 "bf16 vs fp32 d_weight");
  }
}

// The bound of CloseToTheFp32Result tells wrong kernels apart: a result without its bias, or
// with the weight read transposed, is rejected.
TEST_F(LinearBf16Conformance, BoundRejectsWrongResults) {
  const Shape s{130, 64, 64};  // square weight, so the transposed reading has the same shape
  const LinearInputs x(s);
  const std::vector<float> cuda = forward(cuda_bf16_backend(), s, x.in, x.weight, &x.bias);
  std::vector<float> transposed(x.weight.size());
  for (int o = 0; o < s.out_features; ++o)
    for (int i = 0; i < s.in_features; ++i)
      transposed[static_cast<std::size_t>(i) * s.out_features + o] =
          x.weight[static_cast<std::size_t>(o) * s.in_features + i];
  const double no_bias = relative_error(cuda, forward(cpu_backend(), s, x.in, x.weight, nullptr));
  const double wrong_weight =
      relative_error(cuda, forward(cpu_backend(), s, x.in, transposed, &x.bias));
  EXPECT_GT(no_bias, 4.0 * kRelativeBound) << "a missing bias would pass";
  EXPECT_GT(wrong_weight, 4.0 * kRelativeBound) << "a transposed weight would pass";
  std::cout << "[ reject ] missing bias: relative error " << no_bias
            << "; transposed weight: " << wrong_weight << " (bound " << kRelativeBound << ")\n";
}

}  // namespace
}  // namespace tessera::test
