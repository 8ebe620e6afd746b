// Element-wise activations of the CPU backend: GELU (tanh approximation) and SwiGLU.
#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/vector_math.hpp"

namespace tessera::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

/// 1 / (1 + exp(-x)); vectorisable (see vector_math.hpp).
inline float sigmoid(float x) { return sigmoid_approx(x); }

/// u = sqrt(2/pi) (x + 0.044715 x^3), the argument of GELU's tanh.
inline float gelu_argument(float x) { return kSqrt2OverPi * (x + kGeluCubic * x * x * x); }

/// 0.5 (1 + tanh(u)) = sigmoid(2u): GELU is x sigmoid(2u), which has no cancellation for
/// negative x (1 + tanh(u) has) and vectorises.
inline float gelu(float x) { return x * sigmoid(2.0f * gelu_argument(x)); }

}  // namespace

void CpuBackend::gelu_forward(float* out, const float* in, std::size_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) out[i] = gelu(in[i]);
}

// The bias joins in the GELU pass instead of being broadcast into `pre` for the GEMM to add
// (beta = 1): the broadcast wrote `pre` once more and made the GEMM read it back, 9-13 % of the
// forward of a layer 384 wide; here `pre` is read and written once, as GELU did anyway.
void CpuBackend::linear_gelu_forward(float* pre, float* act, const float* in, const float* weight,
                                     const float* bias, int rows, int in_features,
                                     int out_features) {
  if (bf16_linear_ != nullptr || bias == nullptr) {  // bf16: the matmul adds the bias itself
    Backend::linear_gelu_forward(pre, act, in, weight, bias, rows, in_features, out_features);
    return;
  }
  linear_forward(pre, in, weight, nullptr, rows, in_features, out_features);
  const std::size_t width = static_cast<std::size_t>(out_features);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    float* pre_row = pre + r * width;
    float* act_row = act + r * width;
#pragma omp simd
    for (std::size_t c = 0; c < width; ++c) {
      const float x = pre_row[c] + bias[c];
      pre_row[c] = x;
      act_row[c] = gelu(x);
    }
  }
}

void CpuBackend::gelu_backward(float* d_in, const float* d_out, const float* in,
                               std::size_t count) {
  // d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx with t = tanh(u); with s = sigmoid(2u),
  // 0.5 (1 + t) = s and 0.5 (1 - t^2) = 2 s (1 - s), so d/dx = s + 2 x s (1 - s) du/dx.
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) {
    const float x = in[i];
    const float s = sigmoid(2.0f * gelu_argument(x));
    const float du_dx = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    d_in[i] = d_out[i] * (s + 2.0f * x * s * (1.0f - s) * du_dx);
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
