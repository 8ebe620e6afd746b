// AdamW update of the CUDA backend: every segment of a model in one launch. The segments are cut
// into chunks of at most kChunk elements, one block each; the chunk table is uploaded once and
// kept while the segments stay the same (they do from step to step).
#include <algorithm>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"

namespace tessera::cuda {
namespace {

constexpr std::size_t kChunk = 8 * kBlockThreads;

struct Constants {
  float lr, beta1, beta2, eps, gradient_scale;
  float inv_correction1, inv_correction2;  ///< 1 / (1 - beta^step)
};

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v,
                             const AdamWChunk* chunks, Constants s) {
  const AdamWChunk chunk = chunks[blockIdx.x];
  for (unsigned j = threadIdx.x; j < chunk.count; j += blockDim.x) {
    const std::size_t i = chunk.offset + j;
    const float g = grad[i] * s.gradient_scale;
    const float m_i = s.beta1 * m[i] + (1.0f - s.beta1) * g;
    const float v_i = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
    m[i] = m_i;
    v[i] = v_i;
    const float m_hat = m_i * s.inv_correction1;
    const float v_hat = v_i * s.inv_correction2;
    param[i] -= s.lr * (m_hat / (sqrtf(v_hat) + s.eps) + chunk.weight_decay * param[i]);
  }
}

bool same_segments(const std::vector<AdamWSegment>& a, const std::vector<AdamWSegment>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.offset == y.offset && x.count == y.count && x.weight_decay == y.weight_decay;
  });
}

}  // namespace

void CudaBackend::adamw_update(float* param, const float* grad, float* m, float* v,
                               const std::vector<AdamWSegment>& segments, const AdamWStep& step) {
  const Constants s{step.lr,
                    step.beta1,
                    step.beta2,
                    step.eps,
                    step.gradient_scale,
                    adamw_inverse_correction(step.beta1, step.step),
                    adamw_inverse_correction(step.beta2, step.step)};
  if (!same_segments(segments, adamw_segments_)) {
    adamw_chunks_.clear();
    for (const AdamWSegment& segment : segments) {
      for (std::size_t first = 0; first < segment.count; first += kChunk) {
        const auto count = static_cast<unsigned>(std::min(kChunk, segment.count - first));
        adamw_chunks_.push_back({segment.offset + first, count, segment.weight_decay});
      }
    }
    const std::size_t bytes = adamw_chunks_.size() * sizeof(AdamWChunk);
    void* table = grow(adamw_table_, bytes);
    TESSERA_CUDA_CHECK(
        cudaMemcpyAsync(table, adamw_chunks_.data(), bytes, cudaMemcpyHostToDevice, stream_));
    adamw_segments_ = segments;
  }
  if (adamw_chunks_.empty()) return;
  adamw_kernel<<<static_cast<unsigned>(adamw_chunks_.size()), kBlockThreads, 0, stream_>>>(
      param, grad, m, v, static_cast<const AdamWChunk*>(adamw_table_.data), s);
  check_launch();
}

}  // namespace tessera::cuda
