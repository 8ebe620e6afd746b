// Element-wise activations of the CUDA backend: GELU (tanh approximation) and SwiGLU.
// Accurate tanhf/expf (no fast-math intrinsics), so results match the CPU to a few ulps.
#include "backend/cuda/cuda_backend_impl.hpp"

namespace tessera::cuda {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

/// 1 / (1 + exp(-x)); exp overflows to inf for very negative x, which correctly gives 0.
__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void gelu_forward_kernel(float* out, const float* in, std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= count) return;
  const float x = in[i];
  const float t = tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
  out[i] = 0.5f * x * (1.0f + t);
}

/// d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
__global__ void gelu_backward_kernel(float* d_in, const float* d_out, const float* in,
                                     std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= count) return;
  const float x = in[i];
  const float t = tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
  const float du_dx = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  d_in[i] = d_out[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du_dx);
}

__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up,
                                      std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i < count) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

/// silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g).
__global__ void swiglu_backward_kernel(float* d_gate, float* d_up, const float* d_out,
                                       const float* gate, const float* up, std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= count) return;
  const float g = gate[i];
  const float s = sigmoid(g);
  d_gate[i] = d_out[i] * up[i] * s * (1.0f + g * (1.0f - s));
  d_up[i] = d_out[i] * g * s;
}

}  // namespace

void CudaBackend::gelu_forward(float* out, const float* in, std::size_t count) {
  if (count == 0) return;
  gelu_forward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(out, in, count);
  check_launch();
}

void CudaBackend::gelu_backward(float* d_in, const float* d_out, const float* in,
                                std::size_t count) {
  if (count == 0) return;
  gelu_backward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(d_in, d_out, in, count);
  check_launch();
}

void CudaBackend::swiglu_forward(float* out, const float* gate, const float* up,
                                 std::size_t count) {
  if (count == 0) return;
  swiglu_forward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(out, gate, up, count);
  check_launch();
}

void CudaBackend::swiglu_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                                  const float* up, std::size_t count) {
  if (count == 0) return;
  swiglu_backward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(d_gate, d_up, d_out,
                                                                           gate, up, count);
  check_launch();
}

}  // namespace tessera::cuda
