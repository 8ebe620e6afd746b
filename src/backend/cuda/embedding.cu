// Token and learned-position embeddings of the CUDA backend.
//
// The token-embedding backward must add the rows of repeated tokens without float atomics (whose
// order, and so rounding, changes from run to run). It sorts (token, row) pairs with CUB's
// stable radix sort, so each token's rows end up adjacent and in row order; the first position
// of each run then adds the whole run in that order, as the CPU backend does.
#include <cub/device/device_radix_sort.cuh>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"

namespace tessera::cuda {
namespace {

/// Row of the local table for `token`, or -1 when another shard holds it.
__device__ inline long local_row(int32_t token, int vocab_begin, int vocab_local) {
  const long row = static_cast<long>(token) - vocab_begin;
  return row >= 0 && row < vocab_local ? row : -1;
}

__global__ void embedding_forward_kernel(float* out, const int32_t* tokens, const float* table,
                                         int rows, int dim, int vocab_begin, int vocab_local) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= static_cast<std::size_t>(rows) * dim) return;
  const std::size_t r = i / dim;
  const std::size_t c = i % dim;
  const long row = local_row(tokens[r], vocab_begin, vocab_local);
  out[i] = row < 0 ? 0.0f : table[static_cast<std::size_t>(row) * dim + c];
}

/// Sort keys: the local table row, or vocab_local (sorted last, then skipped) for other shards.
__global__ void embedding_keys_kernel(unsigned* keys, int* row_ids, const int32_t* tokens, int rows,
                                      int vocab_begin, int vocab_local) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const long row = local_row(tokens[r], vocab_begin, vocab_local);
  keys[r] = row < 0 ? static_cast<unsigned>(vocab_local) : static_cast<unsigned>(row);
  row_ids[r] = r;
}

/// Thread (x: column, y: sorted position): the first position of each run of equal keys adds the
/// run's rows of d_out, in row order, onto its table row.
__global__ void embedding_backward_kernel(float* d_table, const unsigned* keys, const int* row_ids,
                                          const float* d_out, int rows, int dim,
                                          unsigned vocab_local) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  const int i = blockIdx.x * blockDim.y + threadIdx.y;
  if (c >= dim || i >= rows) return;
  const unsigned key = keys[i];
  if (key == vocab_local || (i > 0 && keys[i - 1] == key)) return;
  float* dst = d_table + static_cast<std::size_t>(key) * dim + c;
  float sum = *dst;
  for (int j = i; j < rows && keys[j] == key; ++j) {
    sum += d_out[static_cast<std::size_t>(row_ids[j]) * dim + c];
  }
  *dst = sum;
}

__global__ void position_forward_kernel(float* out, const float* table, int rows, int seq,
                                        int dim) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= static_cast<std::size_t>(rows) * dim) return;
  const std::size_t r = i / dim;
  out[i] += table[(r % seq) * dim + i % dim];
}

/// One thread per (position, column) adds the batch's rows in order.
__global__ void position_backward_kernel(float* d_table, const float* d_out, int rows, int seq,
                                         int dim) {
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= static_cast<std::size_t>(seq) * dim) return;
  const int position = static_cast<int>(i / dim);
  const std::size_t c = i % dim;
  float sum = d_table[i];
  for (int r = position; r < rows; r += seq) sum += d_out[static_cast<std::size_t>(r) * dim + c];
  d_table[i] = sum;
}

/// Bits that hold every key in [0, vocab_local].
int key_bits(int vocab_local) {
  int bits = 1;
  while (bits < 32 && (1LL << bits) <= vocab_local) ++bits;
  return bits;
}

}  // namespace

void CudaBackend::embedding_forward(float* out, const int32_t* tokens, const float* table, int rows,
                                    int dim, int vocab_begin, int vocab_local) {
  const std::size_t count = static_cast<std::size_t>(rows) * dim;
  if (count == 0) return;
  embedding_forward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(
      out, tokens, table, rows, dim, vocab_begin, vocab_local);
  check_launch();
}

void CudaBackend::embedding_backward(float* d_table, const int32_t* tokens, const float* d_out,
                                     int rows, int dim, int vocab_begin, int vocab_local) {
  if (rows == 0 || dim == 0) return;
  const int bits = key_bits(vocab_local);
  std::size_t sort_bytes = 0;
  TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, sort_bytes, static_cast<const unsigned*>(nullptr), static_cast<unsigned*>(nullptr),
      static_cast<const int*>(nullptr), static_cast<int*>(nullptr), rows, 0, bits, stream_));
  const std::size_t n = static_cast<std::size_t>(rows);
  const std::size_t bytes =
      4 * ScratchCarver::aligned(n * sizeof(unsigned)) + ScratchCarver::aligned(sort_bytes);
  ScratchCarver carve(scratch(bytes));
  unsigned* keys = carve.take<unsigned>(n);
  unsigned* sorted_keys = carve.take<unsigned>(n);
  int* row_ids = carve.take<int>(n);
  int* sorted_row_ids = carve.take<int>(n);
  void* sort_storage = carve.take<char>(sort_bytes);

  embedding_keys_kernel<<<blocks_for(n), kBlockThreads, 0, stream_>>>(keys, row_ids, tokens, rows,
                                                                      vocab_begin, vocab_local);
  check_launch();
  TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_storage, sort_bytes, keys, sorted_keys,
                                                     row_ids, sorted_row_ids, rows, 0, bits,
                                                     stream_));
  const dim3 threads(32, 8);
  const dim3 grid(blocks_for(n, 8), blocks_for(static_cast<std::size_t>(dim), 32));
  embedding_backward_kernel<<<grid, threads, 0, stream_>>>(
      d_table, sorted_keys, sorted_row_ids, d_out, rows, dim, static_cast<unsigned>(vocab_local));
  check_launch();
}

void CudaBackend::position_forward(float* out, const float* table, int rows, int seq, int dim) {
  const std::size_t count = static_cast<std::size_t>(rows) * dim;
  if (count == 0) return;
  position_forward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(out, table, rows, seq,
                                                                            dim);
  check_launch();
}

void CudaBackend::position_backward(float* d_table, const float* d_out, int rows, int seq,
                                    int dim) {
  const std::size_t count = static_cast<std::size_t>(seq) * dim;
  if (count == 0) return;
  position_backward_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(d_table, d_out, rows,
                                                                             seq, dim);
  check_launch();
}

}  // namespace tessera::cuda
