// AdamW update of the Kokkos backend: one kernel per segment (each has its own weight decay).
#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"

namespace tessera::kokkos {

void KokkosBackend::adamw_update(float* param, const float* grad, float* m, float* v,
                                 const std::vector<AdamWSegment>& segments, const AdamWStep& step) {
  const float inv_correction1 = adamw_inverse_correction(step.beta1, step.step);
  const float inv_correction2 = adamw_inverse_correction(step.beta2, step.step);
  const float beta1 = step.beta1, beta2 = step.beta2, lr = step.lr, eps = step.eps;
  const float scale = step.gradient_scale;
  for (const AdamWSegment& segment : segments) {
    const std::size_t n = segment.count;
    const Vector<float> p(param + segment.offset, n), m_s(m + segment.offset, n),
        v_s(v + segment.offset, n);
    const Vector<const float> g_in(grad + segment.offset, n);
    const float decay = segment.weight_decay;
    Kokkos::parallel_for(
        "tessera::adamw_update", flat(n), KOKKOS_LAMBDA(const Index i) {
          const float g = g_in(i) * scale;
          m_s(i) = beta1 * m_s(i) + (1.0f - beta1) * g;
          v_s(i) = beta2 * v_s(i) + (1.0f - beta2) * g * g;
          const float m_hat = m_s(i) * inv_correction1;
          const float v_hat = v_s(i) * inv_correction2;
          p(i) -= lr * (m_hat / (math::sqrt(v_hat) + eps) + decay * p(i));
        });
  }
}

}  // namespace tessera::kokkos
