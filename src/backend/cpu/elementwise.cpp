// Element-wise kernels of the CPU backend: add, accumulate, scale, sum of squares.
#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {
namespace {

/// sum_of_squares splits its input into this many fixed chunks whatever the thread count, and
/// adds the partial sums in chunk order, so the result is bitwise reproducible on any machine.
constexpr std::size_t kSumChunks = 64;

}  // namespace

void CpuBackend::add(float* out, const float* a, const float* b, std::size_t count) {
  // out may alias a or b: each element is read before it is written, by the same iteration.
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
}

void CpuBackend::accumulate(float* out, const float* in, std::size_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) out[i] += in[i];
}

void CpuBackend::scale(float* x, float factor, std::size_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) x[i] *= factor;
}

double CpuBackend::sum_of_squares(const float* x, std::size_t count) {
  double partial[kSumChunks] = {};
  const std::size_t chunk = (count + kSumChunks - 1) / kSumChunks;
#pragma omp parallel for schedule(static) if (count >= kParallelThreshold)
  for (std::size_t c = 0; c < kSumChunks; ++c) {
    const std::size_t begin = std::min(count, c * chunk);
    const std::size_t end = std::min(count, begin + chunk);
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (std::size_t i = begin; i < end; ++i) sum += static_cast<double>(x[i]) * x[i];
    partial[c] = sum;
  }
  double total = 0.0;
  for (double value : partial) total += value;
  return total;
}

}  // namespace tessera::cpu
