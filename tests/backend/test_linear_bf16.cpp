// The CPU backend's linear layer in bf16 precision (GemmPrecision::bf16, oneDNN's AMX or
// AVX512-BF16 kernels) against the fp32 CPU backend, which test_linear.cpp checks against the
// double reference and finite differences.
//
// Why these bounds (the argument of tests/backend_cuda/test_linear_bf16.cpp, whose bf16 GEMMs
// promise the same). Each operand is rounded to bf16 (unit roundoff u = 2^-8) and the products
// are accumulated in fp32; a product of two bf16 values has at most 16 significant bits and is
// exact in fp32, so the bf16 GEMM *is* an fp32 GEMM of the rounded operands:
//  1. Against the fp32 backend fed operands rounded to bf16 here (by a rounding written
//     independently of the backend's): the fp32 tolerance of test_linear.cpp. That also proves
//     the rounding happens, since unrounded operands differ by ~u sqrt(k) / 3 per output.
//  2. Against the fp32 backend on the unrounded operands: the error of each term is a random walk
//     of relative size u sqrt(2/3) = 0.82u in the Euclidean norm over all outputs, whatever k;
//     3u covers the single-term worst case (2u + u^2). It must also be above 0.05u: a bf16 mode
//     that silently computed in fp32 would pass every other check.
// The bias gradient is a column sum outside any GEMM, fp32 from the unrounded d_out.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

#include "backend/cpu/bf16_linear.hpp"
#include "core/error.hpp"
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

constexpr double kUnitRoundoff = 1.0 / 256.0;  // bf16: 8 significant bits
constexpr Tolerance kFp32Tolerance{1e-5, 16.0};

/// The bf16 value nearest to x (ties to the even significand), found by comparing the two bf16
/// neighbours of x in double, so it shares nothing with the backend's rounding. Beyond the largest
/// bf16, IEEE rounding acts as if the next value, 2^128, existed.
float nearest_bf16(float x) {
  if (!std::isfinite(x)) return x;
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const float below = std::bit_cast<float>(bits & 0xffff0000u);  // towards zero
  const float above = std::bit_cast<float>((bits & 0xffff0000u) + 0x10000u);
  const double above_value = std::isinf(above) ? std::copysign(std::ldexp(1.0, 128), x) : above;
  const double to_below = std::abs(static_cast<double>(x) - below);
  const double to_above = std::abs(above_value - x);
  if (to_below != to_above) return to_below < to_above ? below : above;
  return ((std::bit_cast<uint32_t>(below) >> 16) & 1u) == 0 ? below : above;
}

std::vector<float> rounded(std::vector<float> values) {
  for (float& value : values) value = nearest_bf16(value);
  return values;
}

/// ||got - expected|| / ||expected|| over all elements.
double relative_error(const std::vector<float>& got, const std::vector<float>& expected) {
  double error = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    error +=
        (static_cast<double>(got[i]) - expected[i]) * (static_cast<double>(got[i]) - expected[i]);
    norm += static_cast<double>(expected[i]) * expected[i];
  }
  return std::sqrt(error / norm);
}

struct Shape {
  int rows, in_features, out_features;
};
// Odd sizes, single rows and columns, and a head-like layer 8x wider than its input.
const Shape kShapes[] = {{1, 5, 17},     {7, 17, 5},     {33, 64, 64}, {7, 64, 1},
                         {257, 17, 300}, {130, 300, 64}, {33, 5, 768}};

testing::Message describe(Shape s) {
  return testing::Message() << "rows=" << s.rows << " in=" << s.in_features
                            << " out=" << s.out_features;
}

struct LinearInputs {
  explicit LinearInputs(Shape s)
      : in(random_floats(static_cast<std::size_t>(s.rows) * s.in_features, 241)),
        weight(random_floats(static_cast<std::size_t>(s.out_features) * s.in_features, 242)),
        bias(random_floats(static_cast<std::size_t>(s.out_features), 243)),
        d_out(random_floats(static_cast<std::size_t>(s.rows) * s.out_features, 244)),
        d_weight(random_floats(weight.size(), 245)) {}
  std::vector<float> in, weight, bias, d_out, d_weight;
};

std::vector<float> forward(Backend& backend, Shape s, const std::vector<float>& in,
                           const std::vector<float>& weight, const std::vector<float>& bias) {
  DeviceBuffer in_buffer(backend, in), weight_buffer(backend, weight), bias_buffer(backend, bias);
  DeviceBuffer out(backend,
                   constant_floats(static_cast<std::size_t>(s.rows) * s.out_features, kGarbage));
  backend.linear_forward(out.get(), in_buffer.get(), weight_buffer.get(), bias_buffer.get(), s.rows,
                         s.in_features, s.out_features);
  return out.to_host();
}

struct Gradients {
  std::vector<float> d_in, d_weight, d_bias;
};

/// d_weight accumulates onto inputs.d_weight, d_bias onto zero.
Gradients backward(Backend& backend, Shape s, const LinearInputs& inputs,
                   const std::vector<float>& in, const std::vector<float>& weight,
                   const std::vector<float>& d_out) {
  DeviceBuffer in_buffer(backend, in), weight_buffer(backend, weight), d_out_buffer(backend, d_out);
  DeviceBuffer d_weight(backend, inputs.d_weight),
      d_in(backend, constant_floats(in.size(), kGarbage));
  DeviceBuffer d_bias(backend, constant_floats(static_cast<std::size_t>(s.out_features), 0.0f));
  backend.linear_backward(d_in.get(), d_weight.get(), d_bias.get(), d_out_buffer.get(),
                          in_buffer.get(), weight_buffer.get(), s.rows, s.in_features,
                          s.out_features);
  return {d_in.to_host(), d_weight.to_host(), d_bias.to_host()};
}

class CpuLinearBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      bf16_ = make_cpu_backend(GemmPrecision::bf16);
    } catch (const UsageError& error) {
      GTEST_SKIP() << "no bf16 kernels on this CPU: " << error.what();
    }
    fp32_ = make_cpu_backend();
  }
  std::unique_ptr<Backend> bf16_, fp32_;
};

TEST(NearestBf16, RoundsToNearestTiesToEvenKeepsSpecials) {
  const float one = 1.0f, ulp = 1.0f / 128.0f;                   // bf16 spacing at 1
  const float cases[][2] = {{one + ulp / 2, one},                // tie: stays at the even 1.0
                            {one + 3 * ulp / 2, one + 2 * ulp},  // tie: up to the even neighbour
                            {one + ulp / 2 + 1e-6f, one + ulp},  // just above the tie: up
                            {-(one + ulp / 4), -one},
                            {std::numeric_limits<float>::max(), INFINITY},
                            {INFINITY, INFINITY},
                            {-0.0f, -0.0f},
                            {1e-40f, nearest_bf16(1e-40f)}};  // subnormal: whatever is nearest
  std::vector<float> in, expected;
  for (const auto& c : cases) {
    in.push_back(c[0]);
    expected.push_back(c[1]);
    EXPECT_EQ(std::bit_cast<uint32_t>(nearest_bf16(c[0])), std::bit_cast<uint32_t>(c[1]))
        << "test rounding of " << c[0];
  }
  in.push_back(std::numeric_limits<float>::quiet_NaN());
  std::vector<uint16_t> out(in.size());
  cpu::round_to_bf16(out.data(), in.data(), in.size());
  for (std::size_t i = 0; i + 1 < in.size(); ++i) {
    EXPECT_EQ(std::bit_cast<float>(static_cast<uint32_t>(out[i]) << 16), expected[i])
        << "backend rounding of " << in[i];
  }
  EXPECT_TRUE(std::isnan(std::bit_cast<float>(static_cast<uint32_t>(out.back()) << 16)));
  // Many random values, across magnitudes, against the independent rounding.
  std::vector<float> values = random_floats(100000, 246, -1e3f, 1e3f);
  std::vector<uint16_t> bits(values.size());
  cpu::round_to_bf16(bits.data(), values.data(), values.size());
  int mismatches = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    mismatches +=
        std::bit_cast<float>(static_cast<uint32_t>(bits[i]) << 16) != nearest_bf16(values[i]);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(CpuLinearBf16, ForwardIsFp32OfTheRoundedOperands) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x(s);
    const std::vector<float> got = forward(*bf16_, s, x.in, x.weight, x.bias);
    expect_close(got, to_double(forward(*fp32_, s, rounded(x.in), rounded(x.weight), x.bias)),
                 kFp32Tolerance, "bf16 linear_forward");
  }
}

TEST_F(CpuLinearBf16, BackwardIsFp32OfTheRoundedOperands) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x(s);
    const Gradients got = backward(*bf16_, s, x, x.in, x.weight, x.d_out);
    const Gradients on_rounded =
        backward(*fp32_, s, x, rounded(x.in), rounded(x.weight), rounded(x.d_out));
    const Gradients exact = backward(*fp32_, s, x, x.in, x.weight, x.d_out);
    expect_close(got.d_in, to_double(on_rounded.d_in), kFp32Tolerance, "bf16 d_in");
    expect_close(got.d_weight, to_double(on_rounded.d_weight), kFp32Tolerance, "bf16 d_weight");
    expect_close(got.d_bias, to_double(exact.d_bias), kFp32Tolerance, "bf16 d_bias (fp32)");
  }
}

// OpenLM's layers have no bias, and the first layer's input needs no gradient.
TEST_F(CpuLinearBf16, WithoutBiasAndWithoutInputGradient) {
  const Shape s{33, 64, 96};
  const LinearInputs x(s);
  const auto run = [&](Backend& backend, const std::vector<float>& in,
                       const std::vector<float>& weight, const std::vector<float>& d_out) {
    DeviceBuffer in_buffer(backend, in), weight_buffer(backend, weight);
    DeviceBuffer d_out_buffer(backend, d_out), d_weight(backend, x.d_weight);
    DeviceBuffer out(backend, constant_floats(d_out.size(), kGarbage));
    backend.linear_forward(out.get(), in_buffer.get(), weight_buffer.get(), nullptr, s.rows,
                           s.in_features, s.out_features);
    backend.linear_backward(nullptr, d_weight.get(), nullptr, d_out_buffer.get(), in_buffer.get(),
                            weight_buffer.get(), s.rows, s.in_features, s.out_features);
    return std::pair{out.to_host(), d_weight.to_host()};
  };
  const auto [out, d_weight] = run(*bf16_, x.in, x.weight, x.d_out);
  const auto [expected_out, expected_d_weight] =
      run(*fp32_, rounded(x.in), rounded(x.weight), rounded(x.d_out));
  expect_close(out, to_double(expected_out), kFp32Tolerance, "bf16 linear_forward, no bias");
  expect_close(d_weight, to_double(expected_d_weight), kFp32Tolerance, "bf16 d_weight, no d_in");
}

TEST_F(CpuLinearBf16, WithinTheBf16BoundOfFp32AndReallyRounded) {
  for (const Shape s : kShapes) {
    SCOPED_TRACE(describe(s));
    const LinearInputs x(s);
    const double forward_error = relative_error(forward(*bf16_, s, x.in, x.weight, x.bias),
                                                forward(*fp32_, s, x.in, x.weight, x.bias));
    const Gradients got = backward(*bf16_, s, x, x.in, x.weight, x.d_out);
    const Gradients exact = backward(*fp32_, s, x, x.in, x.weight, x.d_out);
    const double d_in_error = relative_error(got.d_in, exact.d_in);
    for (const double error : {forward_error, d_in_error}) {
      EXPECT_LE(error, 3.0 * kUnitRoundoff);
      EXPECT_GE(error, 0.05 * kUnitRoundoff) << "no bf16 rounding happened";
    }
    // d_weight = its previous value (fp32) + the GEMM: no larger relative error than the GEMM.
    EXPECT_LE(relative_error(got.d_weight, exact.d_weight), 3.0 * kUnitRoundoff);
  }
}

}  // namespace
}  // namespace tessera::test
