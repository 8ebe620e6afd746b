// AdamW update of the CUDA backend.
#include <cmath>
#include <string>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "core/error.hpp"

namespace tessera::cuda {
namespace {

struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay;
  float inv_correction1, inv_correction2;  ///< 1 / (1 - beta^step)
};

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, std::size_t count,
                             AdamWStep s) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= count) return;
  const float g = grad[i];
  const float m_i = s.beta1 * m[i] + (1.0f - s.beta1) * g;
  const float v_i = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
  m[i] = m_i;
  v[i] = v_i;
  const float m_hat = m_i * s.inv_correction1;
  const float v_hat = v_i * s.inv_correction2;
  param[i] -= s.lr * (m_hat / (sqrtf(v_hat) + s.eps) + s.weight_decay * param[i]);
}

}  // namespace

void CudaBackend::adamw_update(float* param, const float* grad, float* m, float* v,
                               std::size_t count, float lr, float beta1, float beta2, float eps,
                               float weight_decay, int step) {
  TESSERA_CHECK(step >= 1, "adamw_update: step is 1-based, got " + std::to_string(step));
  if (count == 0) return;
  // Bias corrections in double on the host, as on the CPU: beta2^step needs more than float.
  const AdamWStep s{lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    static_cast<float>(1.0 / (1.0 - std::pow(double{beta1}, step))),
                    static_cast<float>(1.0 / (1.0 - std::pow(double{beta2}, step)))};
  adamw_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(param, grad, m, v, count, s);
  check_launch();
}

}  // namespace tessera::cuda
