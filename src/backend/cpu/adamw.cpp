// AdamW update of the CPU backend.
#include <cmath>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {

void CpuBackend::adamw_update(float* param, const float* grad, float* m, float* v,
                              const std::vector<AdamWSegment>& segments, const AdamWStep& step) {
  const float inv_correction1 = adamw_inverse_correction(step.beta1, step.step);
  const float inv_correction2 = adamw_inverse_correction(step.beta2, step.step);
  const float beta1 = step.beta1, beta2 = step.beta2, lr = step.lr, eps = step.eps;
  const float scale = step.gradient_scale;
  for (const AdamWSegment& segment : segments) {
    float* p = param + segment.offset;
    const float* g_in = grad + segment.offset;
    float* m_s = m + segment.offset;
    float* v_s = v + segment.offset;
    const float decay = segment.weight_decay;
    const std::size_t count = segment.count;
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
    for (std::size_t i = 0; i < count; ++i) {
      const float g = g_in[i] * scale;
      m_s[i] = beta1 * m_s[i] + (1.0f - beta1) * g;
      v_s[i] = beta2 * v_s[i] + (1.0f - beta2) * g * g;
      const float m_hat = m_s[i] * inv_correction1;
      const float v_hat = v_s[i] * inv_correction2;
      p[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + decay * p[i]);
    }
  }
}

}  // namespace tessera::cpu
