// AdamW update of the CPU backend.
#include <cmath>
#include <string>

#include "backend/cpu/cpu_backend.hpp"
#include "core/error.hpp"

namespace tessera::cpu {

void CpuBackend::adamw_update(float* param, const float* grad, float* m, float* v,
                              std::size_t count, float lr, float beta1, float beta2, float eps,
                              float weight_decay, int step) {
  TESSERA_CHECK(step >= 1, "adamw_update: step is 1-based, got " + std::to_string(step));
  // Bias corrections in double: beta2^step for beta2 = 0.999 needs more than float's digits.
  const float inv_correction1 = static_cast<float>(1.0 / (1.0 - std::pow(double{beta1}, step)));
  const float inv_correction2 = static_cast<float>(1.0 / (1.0 - std::pow(double{beta2}, step)));
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) {
    const float g = grad[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * g;
    v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
    const float m_hat = m[i] * inv_correction1;
    const float v_hat = v[i] * inv_correction2;
    param[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + weight_decay * param[i]);
  }
}

}  // namespace tessera::cpu
