// Softmax cross-entropy with z-loss, fused with its gradient, of the CPU backend.
#include <cmath>
#include <string>

#include "backend/cpu/cpu_backend.hpp"
#include "core/error.hpp"

namespace tessera::cpu {
namespace {

/// log(sum_j exp(x_j)), with the maximum subtracted first; the sum of exponentials is kept in
/// double so large vocabularies lose no precision.
float log_sum_exp(const float* x, int vocab) {
  float max = x[0];
  for (int j = 1; j < vocab; ++j) max = std::fmax(max, x[j]);
  double sum = 0.0;
  for (int j = 0; j < vocab; ++j) sum += std::exp(x[j] - max);
  return max + static_cast<float>(std::log(sum));
}

void check_targets(const int32_t* targets, int rows, int vocab) {
  for (int r = 0; r < rows; ++r) {
    TESSERA_CHECK(targets[r] >= 0 && targets[r] < vocab,
                  "target " + std::to_string(targets[r]) + " of row " + std::to_string(r) +
                      " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
}

}  // namespace

void CpuBackend::softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                                       const int32_t* targets, int rows, int vocab, float z_loss,
                                       float grad_scale) {
  check_targets(targets, rows, vocab);  // before the parallel loop: exceptions may not leave it
  const std::size_t width = static_cast<std::size_t>(vocab);
  // d_logits may alias logits, so each row reads everything it needs (lse, the target logit)
  // before writing, and then writes element j only after reading logit j.
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = logits + r * width;
    const float lse = log_sum_exp(x, vocab);
    const int32_t target = targets[r];
    losses[r] = lse - x[target] + z_loss * lse * lse;
    if (d_logits == nullptr) continue;
    // d loss / d x_j = softmax_j (1 + 2 z_loss lse) - [j == target]
    float* dx = d_logits + r * width;
    const float factor = grad_scale * (1.0f + 2.0f * z_loss * lse);
    for (int j = 0; j < vocab; ++j) dx[j] = std::exp(x[j] - lse) * factor;
    dx[target] -= grad_scale;
  }
}

}  // namespace tessera::cpu
