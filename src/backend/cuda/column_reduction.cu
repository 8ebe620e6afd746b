// Deterministic reductions over rows for parameter gradients (norm gains and biases, linear
// biases): fixed chunks of kRowsPerChunk rows, one thread per (chunk, column) summing its rows in
// order, then one thread per column adding the chunk partials in order. No atomics, and the
// partition depends only on the shape, so every run (and every GPU) rounds identically.
#include "backend/cuda/cuda_backend_impl.hpp"

namespace tessera::cuda {
namespace {

constexpr int kRowsPerChunk = 64;

int chunks_for(int rows) { return (rows + kRowsPerChunk - 1) / kRowsPerChunk; }

/// partials[0][chunk, c] = sum of d_out * xhat over the chunk's rows (xhat = 1 without `in`);
/// partials[1][chunk, c] = sum of d_out, when bias sums are wanted.
__global__ void column_partials_kernel(float* gain_partials, float* bias_partials,
                                       ColumnReduction job) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int chunk = blockIdx.y;
  if (c >= job.dim) return;
  const int begin = chunk * kRowsPerChunk;
  const int end = min(job.rows, begin + kRowsPerChunk);
  float gain_sum = 0.0f;
  float bias_sum = 0.0f;
  for (int r = begin; r < end; ++r) {
    const std::size_t i = static_cast<std::size_t>(r) * job.dim + c;
    const float g = job.d_out[i];
    if (job.in == nullptr) {
      gain_sum += g;
    } else {
      const float shift = job.mean != nullptr ? job.mean[r] : 0.0f;
      gain_sum += g * (job.in[i] - shift) * job.rstd[r];
    }
    bias_sum += g;
  }
  const std::size_t out = static_cast<std::size_t>(chunk) * job.dim + c;
  gain_partials[out] = gain_sum;
  if (bias_partials != nullptr) bias_partials[out] = bias_sum;
}

__global__ void column_finish_kernel(float* d_gain, float* d_bias, const float* gain_partials,
                                     const float* bias_partials, int chunks, int dim) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  float gain_sum = 0.0f;
  float bias_sum = 0.0f;
  for (int chunk = 0; chunk < chunks; ++chunk) {
    const std::size_t i = static_cast<std::size_t>(chunk) * dim + c;
    gain_sum += gain_partials[i];
    if (d_bias != nullptr) bias_sum += bias_partials[i];
  }
  d_gain[c] += gain_sum;
  if (d_bias != nullptr) d_bias[c] += bias_sum;
}

}  // namespace

std::size_t column_reduction_scratch(int rows, int dim) {
  return 2 * static_cast<std::size_t>(chunks_for(rows)) * dim;
}

void add_column_reductions(const ColumnReduction& job, float* scratch, cudaStream_t stream) {
  if (job.rows == 0 || job.dim == 0) return;
  const int chunks = chunks_for(job.rows);
  float* gain_partials = scratch;
  float* bias_partials =
      job.d_bias != nullptr ? scratch + static_cast<std::size_t>(chunks) * job.dim : nullptr;
  const dim3 grid(blocks_for(static_cast<std::size_t>(job.dim)), chunks);
  column_partials_kernel<<<grid, kBlockThreads, 0, stream>>>(gain_partials, bias_partials, job);
  column_finish_kernel<<<blocks_for(static_cast<std::size_t>(job.dim)), kBlockThreads, 0, stream>>>(
      job.d_gain, job.d_bias, gain_partials, bias_partials, chunks, job.dim);
}

}  // namespace tessera::cuda
