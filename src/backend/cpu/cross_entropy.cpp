// Softmax cross-entropy with z-loss, fused with its gradient, of the CPU backend.
//
// One pass over a row finds its maximum; a second writes exp(x - max) over the gradient row
// (which may be the logits themselves) while summing it; a third scales it into the gradient.
// That is one exp per logit (the vocabulary-wide softmax was the largest element-wise cost of a
// step), vectorised through exp_approx.
#include <cmath>
#include <string>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/vector_math.hpp"
#include "core/error.hpp"

namespace tessera::cpu {
namespace {

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
  // d_logits may alias logits, so each row reads its maximum and target logit before it writes,
  // and then writes element j only after reading logit j.
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    const float* x = logits + r * width;
    const int32_t target = targets[r];
    const float target_logit = x[target];
    const float max = row_maximum(x, vocab);
    float* dx = d_logits == nullptr ? nullptr : d_logits + r * width;
    const double sum = sum_of_exponentials(dx, x, max, vocab);
    const float lse = max + static_cast<float>(std::log(sum));
    losses[r] = lse - target_logit + z_loss * lse * lse;
    if (dx == nullptr) continue;
    // d loss / d x_j = softmax_j (1 + 2 z_loss lse) - [j == target], softmax_j = e_j / sum.
    const float factor = static_cast<float>(grad_scale * (1.0f + 2.0f * z_loss * lse) / sum);
#pragma omp simd
    for (int j = 0; j < vocab; ++j) dx[j] *= factor;
    dx[target] -= grad_scale;
  }
}

}  // namespace tessera::cpu
