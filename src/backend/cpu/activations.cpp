// Element-wise activations of the CPU backend: GELU (tanh approximation) and SwiGLU.
#include <cmath>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

/// 1 / (1 + exp(-x)); exp overflows to inf for very negative x, which correctly gives 0.
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

void CpuBackend::gelu_forward(float* out, const float* in, std::size_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) {
    const float x = in[i];
    const float t = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
    out[i] = 0.5f * x * (1.0f + t);
  }
}

void CpuBackend::gelu_backward(float* d_in, const float* d_out, const float* in,
                               std::size_t count) {
  // d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) {
    const float x = in[i];
    const float t = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
    const float du_dx = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    d_in[i] = d_out[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du_dx);
  }
}

void CpuBackend::swiglu_forward(float* out, const float* gate, const float* up, std::size_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

void CpuBackend::swiglu_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                                 const float* up, std::size_t count) {
  // silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g).
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) {
    const float g = gate[i];
    const float s = sigmoid(g);
    d_gate[i] = d_out[i] * up[i] * s * (1.0f + g * (1.0f - s));
    d_up[i] = d_out[i] * g * s;
  }
}

}  // namespace tessera::cpu
