// Token and learned-position embeddings of the CPU backend.
#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {
namespace {

/// Columns per task of the backward passes: tasks own disjoint column blocks of the table, so
/// repeated tokens never race and every row is added in the same order on every run.
constexpr int kColumnBlock = 64;

/// Row of the local table for `token`, or -1 when another shard holds it.
inline long local_row(int32_t token, int vocab_begin, int vocab_local) {
  const long row = static_cast<long>(token) - vocab_begin;
  return row >= 0 && row < vocab_local ? row : -1;
}

}  // namespace

void CpuBackend::embedding_forward(float* out, const int32_t* tokens, const float* table, int rows,
                                   int dim, int vocab_begin, int vocab_local) {
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    float* dst = out + r * width;
    const long row = local_row(tokens[r], vocab_begin, vocab_local);
    if (row < 0) {
      std::memset(dst, 0, width * sizeof(float));
    } else {
      std::memcpy(dst, table + static_cast<std::size_t>(row) * width, width * sizeof(float));
    }
  }
}

void CpuBackend::embedding_backward(float* d_table, const int32_t* tokens, const float* d_out,
                                    int rows, int dim, int vocab_begin, int vocab_local) {
  const int blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int block = 0; block < blocks; ++block) {
    const int begin = block * kColumnBlock;
    const int end = std::min(dim, begin + kColumnBlock);
    for (int r = 0; r < rows; ++r) {
      const long row = local_row(tokens[r], vocab_begin, vocab_local);
      if (row < 0) continue;
      float* dst = d_table + static_cast<std::size_t>(row) * width;
      const float* src = d_out + r * width;
      for (int c = begin; c < end; ++c) dst[c] += src[c];
    }
  }
}

void CpuBackend::position_forward(float* out, const float* table, int rows, int seq, int dim) {
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int r = 0; r < rows; ++r) {
    float* dst = out + r * width;
    const float* src = table + static_cast<std::size_t>(r % seq) * width;
    for (std::size_t c = 0; c < width; ++c) dst[c] += src[c];
  }
}

void CpuBackend::position_backward(float* d_table, const float* d_out, int rows, int seq, int dim) {
  // Each position is owned by one iteration, which adds the batch's rows in order.
  const std::size_t width = static_cast<std::size_t>(dim);
#pragma omp parallel for schedule(static) if (width * rows >= kParallelThreshold)
  for (int position = 0; position < seq; ++position) {
    float* dst = d_table + static_cast<std::size_t>(position) * width;
    for (int r = position; r < rows; r += seq) {
      const float* src = d_out + r * width;
      for (std::size_t c = 0; c < width; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace tessera::cpu
