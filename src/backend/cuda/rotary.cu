// Rotary position embedding of the CUDA backend (pairs (i, i + head_dim/2), NeoX convention).
// Angles in double: position * frequency reaches thousands of radians, where a float angle would
// already be off by ~1e-4.
#include <string>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "core/error.hpp"

namespace tessera::cuda {
namespace {

/// cos and sin of every (position, pair) angle: table[0: seq*half) cos, then sin; row p holds
/// position first_position + p.
__global__ void rotary_table_kernel(float* table, int seq, int first_position, int head_dim,
                                    double base) {
  const int half = head_dim / 2;
  const std::size_t pairs = static_cast<std::size_t>(seq) * half;
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= pairs) return;
  const int position = static_cast<int>(i / half);
  const int pair = static_cast<int>(i % half);
  const double angle = (first_position + position) * pow(base, -2.0 * pair / head_dim);
  table[i] = static_cast<float>(cos(angle));
  table[pairs + i] = static_cast<float>(sin(angle));
}

/// One thread per (token, query-or-key head, pair); values are left alone. sign -1 rotates by
/// -angle, the inverse and also the transpose, since rotations are orthogonal.
__global__ void rotate_kernel(float* qkv, const float* table, AttentionShape shape, float sign) {
  const int half = shape.head_dim / 2;
  const int heads = 2 * shape.n_heads;
  const std::size_t rows = static_cast<std::size_t>(shape.batch) * shape.seq;
  const std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x;
  if (i >= rows * heads * half) return;
  const int pair = static_cast<int>(i % half);
  const int head = static_cast<int>(i / half % heads);
  const std::size_t r = i / half / heads;
  const std::size_t angle = (r % shape.seq) * half + pair;
  const float cos_angle = table[angle];
  const float sin_angle = sign * table[static_cast<std::size_t>(shape.seq) * half + angle];
  float* x = qkv + r * 3 * shape.n_heads * shape.head_dim +
             static_cast<std::size_t>(head) * shape.head_dim;
  const float first = x[pair];
  const float second = x[pair + half];
  x[pair] = first * cos_angle - second * sin_angle;
  x[pair + half] = first * sin_angle + second * cos_angle;
}

}  // namespace

void CudaBackend::rotate(float* qkv, const AttentionShape& shape, float base, float sign) {
  TESSERA_CHECK(shape.head_dim % 2 == 0,
                "rotary embedding needs an even head_dim, got " + std::to_string(shape.head_dim));
  const std::size_t pairs = static_cast<std::size_t>(shape.seq) * (shape.head_dim / 2);
  if (pairs == 0 || shape.batch == 0 || shape.n_heads == 0) return;
  float* table = static_cast<float*>(scratch(2 * pairs * sizeof(float)));
  rotary_table_kernel<<<blocks_for(pairs), kBlockThreads, 0, stream_>>>(
      table, shape.seq, shape.first_position, shape.head_dim, base);
  check_launch();
  const std::size_t count = static_cast<std::size_t>(shape.batch) * 2 * shape.n_heads * pairs;
  rotate_kernel<<<blocks_for(count), kBlockThreads, 0, stream_>>>(qkv, table, shape, sign);
  check_launch();
}

void CudaBackend::rotary_forward(float* qkv, const AttentionShape& shape, float base) {
  rotate(qkv, shape, base, 1.0f);
}

void CudaBackend::rotary_backward(float* d_qkv, const AttentionShape& shape, float base) {
  rotate(d_qkv, shape, base, -1.0f);
}

}  // namespace tessera::cuda
