// Private to src/backend/cpu: exp and sigmoid written so that loops under `#pragma omp simd`
// vectorise (branch-free, no libm call; libm's expf / tanhf stay scalar without -ffast-math,
// which made GELU and the vocabulary softmax the slowest element-wise work of a step).
//
// exp_approx is Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is
// exact), exp(r) by a degree-7 polynomial, times 2^n built in the exponent bits. Relative error
// below 2 ulp on [-87, 88]; inputs are clamped to that range (exp(-87) ~ 1.6e-38 stands in for
// anything smaller, which no caller can tell from 0 next to the terms it adds it to).
//
// row_maximum and sum_of_exponentials are the two reductions of every softmax. GCC vectorises a
// maximum only over a ternary (std::max stayed scalar, 4x slower), and a double
// accumulator halves the vector width and serialises the adds (5x slower than float); so sums
// run in float over short blocks and only the block sums are added in double.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tessera::cpu {

/// Sixteen floats (one 512-bit vector) in GCC's and Clang's vector extension, and sixteen ints.
using FloatVector16 = float __attribute__((vector_size(64)));
using Int32Vector16 = int32_t __attribute__((vector_size(64)));

/// exp_approx on one float or on sixteen lanes: the same operations in the same order, so every
/// lane equals the scalar result bit for bit.
template <class Floats, class Ints>
inline Floats exp_approx_lanes(Floats x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693359375f;
  constexpr float kLn2Low = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const Floats low = Floats{} - 87.0f, high = Floats{} + 88.0f;
  x = x > high ? high : x;
  x = x < low ? low : x;
  const Floats n = (x * kLog2e + kRound) - kRound;
  Floats r = x - n * kLn2High;
  r = r - n * kLn2Low;
  Floats p = Floats{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  Ints whole;
  if constexpr (std::is_same_v<Floats, float>) {
    whole = static_cast<Ints>(n);
  } else {
    whole = __builtin_convertvector(n, Ints);
  }
  return p * std::bit_cast<Floats>((whole + 127) << 23);
}

inline float exp_approx(float x) { return exp_approx_lanes<float, int32_t>(x); }

/// 1 / (1 + exp(-x)), without cancellation at either end.
inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

/// The largest of x[0, count), count >= 1, sixteen lanes at a time. Written in the vector
/// extension because GCC left both `omp simd reduction(max)` and sixteen scalar maxima as
/// chains of scalar maxss in attention's softmax (79 % of the forward's own time under perf).
inline float row_maximum(const float* x, int count) {
  float max = x[0];
  int j = 0;
  if (count >= 16) {
    FloatVector16 lanes;
    std::memcpy(&lanes, x, sizeof lanes);
    for (j = 16; j + 16 <= count; j += 16) {
      FloatVector16 next;
      std::memcpy(&next, x + j, sizeof next);
      lanes = next > lanes ? next : lanes;
    }
    for (int lane = 0; lane < 16; ++lane) max = lanes[lane] > max ? lanes[lane] : max;
  }
  for (; j < count; ++j) max = x[j] > max ? x[j] : max;
  return max;
}

/// sum_j a_j b_j over [0, count) in float, sixteen lanes at a time (the `omp simd reduction(+)`
/// form stayed a scalar chain of dependent FMAs in attention's softmax backward).
inline float dot_product(const float* a, const float* b, int count) {
  FloatVector16 lanes = {};
  int j = 0;
  for (; j + 16 <= count; j += 16) {
    FloatVector16 x, y;
    std::memcpy(&x, a + j, sizeof x);
    std::memcpy(&y, b + j, sizeof y);
    lanes += x * y;
  }
  float sum = 0.0f;
  for (int lane = 0; lane < 16; ++lane) sum += lanes[lane];
  for (; j < count; ++j) sum += a[j] * b[j];
  return sum;
}

/// Elements per float partial sum of sum_of_exponentials: its rounding error stays near
/// 2^-24 * sqrt(block) relative, however long the row.
constexpr int kExpSumBlock = 512;

/// sum_j exp(x_j - shift) over x[0, count); when `e` is not null it receives every
/// exp(x_j - shift) (e may be x). Sixteen lanes at a time, the last vector masked: the
/// `omp simd reduction` form peeled scalar iterations at both ends and spilled its lanes at every
/// call, a fifth of attention's forward when each causal row is a call of its own.
inline double sum_of_exponentials(float* e, const float* x, float shift, int count) {
  constexpr Int32Vector16 kLane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  double total = 0.0;
  for (int begin = 0; begin < count; begin += kExpSumBlock) {
    const int end = std::min(count, begin + kExpSumBlock);
    FloatVector16 lanes = {};
    int j = begin;
    for (; j + 16 <= end; j += 16) {
      FloatVector16 values;
      std::memcpy(&values, x + j, sizeof values);
      values = exp_approx_lanes<FloatVector16, Int32Vector16>(values - shift);
      if (e != nullptr) std::memcpy(e + j, &values, sizeof values);
      lanes += values;
    }
    float sum = 0.0f;
    if (j < end && end >= 16) {
      // The last sixteen elements of the row, of which lanes below j - first are done: a
      // copy of a partial vector through the stack stalled store forwarding on every row.
      const int first = end - 16;
      const auto fresh = kLane >= j - first;
      FloatVector16 values;
      std::memcpy(&values, x + first, sizeof values);
      values = exp_approx_lanes<FloatVector16, Int32Vector16>(values - shift);
      values = fresh ? values : FloatVector16{};
      lanes += values;
      if (e != nullptr) {
        FloatVector16 stored;
        std::memcpy(&stored, e + first, sizeof stored);
        stored = fresh ? values : stored;
        std::memcpy(e + first, &stored, sizeof stored);
      }
    } else {
      for (; j < end; ++j) {
        const float value = exp_approx(x[j] - shift);
        if (e != nullptr) e[j] = value;
        sum += value;
      }
    }
    for (int lane = 0; lane < 16; ++lane) sum += lanes[lane];
    total += static_cast<double>(sum);
  }
  return total;
}

}  // namespace tessera::cpu
