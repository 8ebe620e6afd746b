// The 16-bit floats tessera stores and exchanges: bfloat16 (fp32's upper half) and IEEE
// binary16. From float: rounded to nearest, ties to even; NaN stays NaN, and binary16 overflows
// to infinity from 65520 up. To float: exact. Inline, so that loops over them vectorise.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace tessera {

inline uint16_t bf16_from_float(float value) {
  const auto bits = std::bit_cast<uint32_t>(value);
  const uint32_t nearest = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
  return static_cast<uint16_t>(nan ? (bits >> 16) | 0x40u : nearest);
}

inline float float_from_bf16(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

inline uint16_t f16_from_float(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  bits &= 0x7FFFFFFFu;
  if (bits > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (bits >= 0x477FF000u) return sign | 0x7C00u;  // infinity, or >= 65520: rounds to it
  if (bits < 0x38800000u) {  // below 2^-14: subnormal, its mantissa x * 2^24 rounded to even
    const float scaled = std::bit_cast<float>(bits) * 16777216.0f;  // exact: a power of two
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t half = (((bits >> 23) - 112u) << 10) | ((bits & 0x7FFFFFu) >> 13);
  const uint32_t rest = bits & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u) != 0)) ++half;  // a carry is right too
  return sign | static_cast<uint16_t>(half);
}

inline float float_from_f16(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu, mantissa = bits & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

}  // namespace tessera
