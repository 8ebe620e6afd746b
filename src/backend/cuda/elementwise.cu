// Element-wise kernels of the CUDA backend: add, accumulate, scale, sum of squares.
#include <algorithm>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/device_reduce.cuh"

namespace tessera::cuda {
namespace {

/// sum_of_squares partitions each range by its size alone, whatever the device, so its rounding is
/// the same on every run and every GPU: one block per kSumChunk elements, at most kSumBlocks.
constexpr int kSumBlocks = 1024;
constexpr std::size_t kSumChunk = 8 * kBlockThreads;

int sum_blocks(std::size_t count) {
  return static_cast<int>(std::min<std::size_t>(kSumBlocks, (count + kSumChunk - 1) / kSumChunk));
}

__global__ void add_kernel(float* out, const float* a, const float* b, std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i < count) out[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(float* out, const float* in, std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i < count) out[i] += in[i];
}

__global__ void scale_kernel(float* x, float factor, std::size_t count) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i < count) x[i] *= factor;
}

/// Pass 1: block b sums x[i]^2 in double over its grid-stride elements into partial[b].
__global__ void sum_squares_partial_kernel(double* partial, const float* x, std::size_t count) {
  __shared__ double shared[kWarpSize];
  double sum = 0.0;
  const std::size_t stride = std::size_t{gridDim.x} * blockDim.x;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count; i += stride) {
    sum += static_cast<double>(x[i]) * x[i];
  }
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

/// Pass 2: one block adds the partials in a fixed order.
__global__ void sum_partials_kernel(double* total, const double* partial, std::size_t count) {
  __shared__ double shared[kWarpSize];
  double sum = 0.0;
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) sum += partial[i];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace

void CudaBackend::add(float* out, const float* a, const float* b, std::size_t count) {
  if (count == 0) return;
  add_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(out, a, b, count);
  check_launch();
}

void CudaBackend::accumulate(float* out, const float* in, std::size_t count) {
  if (count == 0) return;
  accumulate_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(out, in, count);
  check_launch();
}

void CudaBackend::scale(float* x, float factor, std::size_t count) {
  if (count == 0) return;
  scale_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(x, factor, count);
  check_launch();
}

double CudaBackend::sum_of_squares(const float* x, std::size_t count) {
  return sum_of_squares_of_ranges(x, {{0, count}});
}

double CudaBackend::sum_of_squares_of_ranges(const float* base,
                                             const std::vector<BufferRange>& ranges) {
  // Each range gets a block count that depends on its size alone (a fixed partition, so the same
  // ranges always round alike): one block per kSumChunk elements, at most kSumBlocks. All partials
  // land in one array that a single block adds in order, and the host waits once.
  std::size_t slots = 0;
  for (const BufferRange& range : ranges) slots += sum_blocks(range.count);
  if (slots == 0) return 0.0;
  double* partial = static_cast<double*>(scratch((slots + 1) * sizeof(double)));
  double* total = partial + slots;
  std::size_t slot = 0;
  for (const BufferRange& range : ranges) {
    const int blocks = sum_blocks(range.count);
    if (blocks == 0) continue;
    sum_squares_partial_kernel<<<blocks, kBlockThreads, 0, stream_>>>(
        partial + slot, base + range.offset, range.count);
    check_launch();
    slot += static_cast<std::size_t>(blocks);
  }
  sum_partials_kernel<<<1, kBlockThreads, 0, stream_>>>(total, partial, slots);
  check_launch();
  double result = 0.0;
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(&result, total, sizeof(double), cudaMemcpyDeviceToHost, stream_));
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return result;
}

}  // namespace tessera::cuda
