// Vocab-parallel softmax cross-entropy of the CPU backend: per-shard statistics, their
// re-basing onto the group maximum, and the loss and gradient from the combined statistics.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/vector_math.hpp"

namespace tessera::cpu {

void CpuBackend::cross_entropy_shard_stats(float* row_max, float* row_sum, float* target_logit,
                                           const float* logits, const int32_t* targets, int rows,
                                           int vocab_local, int vocab_begin) {
  const std::size_t width = static_cast<std::size_t>(vocab_local);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = logits + r * width;
    const float max = row_maximum(x, vocab_local);
    const double sum = sum_of_exponentials(nullptr, x, max, vocab_local);
    row_max[r] = max;
    row_sum[r] = static_cast<float>(sum);
    const int local_target = targets[r] - vocab_begin;
    const bool held_here = local_target >= 0 && local_target < vocab_local;
    target_logit[r] = held_here ? x[local_target] : 0.0f;
  }
}

void CpuBackend::rebase_row_sums(float* row_sum, const float* row_max, const float* global_max,
                                 int rows) {
  for (int r = 0; r < rows; ++r) row_sum[r] *= std::exp(row_max[r] - global_max[r]);
}

void CpuBackend::cross_entropy_shard_finish(float* losses, float* d_logits, const float* logits,
                                            const int32_t* targets, const float* global_max,
                                            const float* global_sum, const float* target_logit,
                                            int rows, int vocab_local, int vocab_begin,
                                            float z_loss, float grad_scale) {
  const std::size_t width = static_cast<std::size_t>(vocab_local);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float lse = global_max[r] + std::log(global_sum[r]);
    losses[r] = lse - target_logit[r] + z_loss * lse * lse;
    if (d_logits == nullptr) continue;
    // d loss / d x_j = softmax_j (1 + 2 z_loss lse) - [j == target], for this shard's columns.
    const float* x = logits + r * width;
    float* dx = d_logits + r * width;
    const float factor = grad_scale * (1.0f + 2.0f * z_loss * lse);
#pragma omp simd
    for (int j = 0; j < vocab_local; ++j) dx[j] = exp_approx(x[j] - lse) * factor;
    const int local_target = targets[r] - vocab_begin;
    if (local_target >= 0 && local_target < vocab_local) dx[local_target] -= grad_scale;
  }
}

}  // namespace tessera::cpu
