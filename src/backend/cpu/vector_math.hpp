// Private to src/backend/cpu: exp and sigmoid written so that loops under `#pragma omp simd`
// vectorise (branch-free, no libm call; libm's expf / tanhf stay scalar without -ffast-math,
// which made GELU and the vocabulary softmax the slowest element-wise work of a step).
//
// exp_approx is Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is
// exact), exp(r) by a degree-7 polynomial, times 2^n built in the exponent bits. Relative error
// below 2 ulp on [-87, 88]; inputs are clamped to that range (exp(-87) ~ 1.6e-38 stands in for
// anything smaller, which no caller can tell from 0 next to the terms it adds it to).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace tessera::cpu {

inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693359375f;
  constexpr float kLn2Low = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * kLog2e + kRound) - kRound;
  float r = x - n * kLn2High;
  r = r - n * kLn2Low;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(exponent);
}

/// 1 / (1 + exp(-x)), without cancellation at either end.
inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

}  // namespace tessera::cpu
