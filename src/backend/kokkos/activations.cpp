// Element-wise activations of the Kokkos backend: GELU (tanh approximation) and SwiGLU.
#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"

namespace tessera::kokkos {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

KOKKOS_INLINE_FUNCTION float sigmoid(float x) { return 1.0f / (1.0f + math::exp_approx(-x)); }

/// 0.5 (1 + tanh(u)) = sigmoid(2u) with u = sqrt(2/pi) (x + 0.044715 x^3): GELU is
/// x sigmoid(2u), without the cancellation 1 + tanh(u) has for negative x.
KOKKOS_INLINE_FUNCTION float gelu_gate(float x) {
  return sigmoid(2.0f * kSqrt2OverPi * (x + kGeluCubic * x * x * x));
}

}  // namespace

void KokkosBackend::gelu_forward(float* out, const float* in, std::size_t count) {
  const Vector<float> y(out, count);
  const Vector<const float> x(in, count);
  Kokkos::parallel_for(
      "tessera::gelu_forward", flat(count),
      KOKKOS_LAMBDA(const Index i) { y(i) = x(i) * gelu_gate(x(i)); });
}

void KokkosBackend::gelu_backward(float* d_in, const float* d_out, const float* in,
                                  std::size_t count) {
  const Vector<float> dx(d_in, count);
  const Vector<const float> dy(d_out, count), x(in, count);
  // d/dx = s + 2 x s (1 - s) du/dx with s = sigmoid(2u) (0.5 (1 - tanh^2) = 2 s (1 - s)).
  Kokkos::parallel_for(
      "tessera::gelu_backward", flat(count), KOKKOS_LAMBDA(const Index i) {
        const float v = x(i);
        const float s = gelu_gate(v);
        const float du_dx = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
        dx(i) = dy(i) * (s + 2.0f * v * s * (1.0f - s) * du_dx);
      });
}

void KokkosBackend::swiglu_forward(float* out, const float* gate, const float* up,
                                   std::size_t count) {
  const Vector<float> y(out, count);
  const Vector<const float> g(gate, count), u(up, count);
  Kokkos::parallel_for(
      "tessera::swiglu_forward", flat(count),
      KOKKOS_LAMBDA(const Index i) { y(i) = g(i) * sigmoid(g(i)) * u(i); });
}

void KokkosBackend::swiglu_backward(float* d_gate, float* d_up, const float* d_out,
                                    const float* gate, const float* up, std::size_t count) {
  const Vector<float> dg(d_gate, count), du(d_up, count);
  const Vector<const float> dy(d_out, count), g(gate, count), u(up, count);
  // silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g).
  Kokkos::parallel_for(
      "tessera::swiglu_backward", flat(count), KOKKOS_LAMBDA(const Index i) {
        const float s = sigmoid(g(i));
        dg(i) = dy(i) * u(i) * s * (1.0f + g(i) * (1.0f - s));
        du(i) = dy(i) * g(i) * s;
      });
}

}  // namespace tessera::kokkos
