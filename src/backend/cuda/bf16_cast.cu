// fp32 -> bf16 copies of GEMM operands for the bf16 precision mode, and bf16 -> fp32 for results
// computed in bf16 (cuDNN attention). A pure bandwidth kernel: each
// thread reads one float4 (16 bytes) and writes four bf16 (8 bytes) in one store, and a
// grid-stride loop lets a fixed grid cover any count.
#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_backend_impl.hpp"

namespace tessera::cuda {
namespace {

/// Enough resident threads to saturate memory bandwidth on an H100 (132 SMs x 2048 threads).
constexpr int kMaxCastBlocks = 2048;

struct alignas(8) Bf16x4 {
  __nv_bfloat162 low, high;
};

__global__ void cast_quads_kernel(Bf16x4* out, const float4* in, std::size_t quads) {
  const std::size_t stride = std::size_t{gridDim.x} * blockDim.x;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < quads; i += stride) {
    const float4 value = in[i];
    out[i] = {__floats2bfloat162_rn(value.x, value.y), __floats2bfloat162_rn(value.z, value.w)};
  }
}

__global__ void cast_kernel(__nv_bfloat16* out, const float* in, std::size_t count) {
  const std::size_t stride = std::size_t{gridDim.x} * blockDim.x;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count; i += stride)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void widen_kernel(float* out, const __nv_bfloat16* in, std::size_t count) {
  const std::size_t stride = std::size_t{gridDim.x} * blockDim.x;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count; i += stride)
    out[i] = __bfloat162float(in[i]);
}

int cast_blocks(std::size_t count) { return std::min(blocks_for(count), kMaxCastBlocks); }

}  // namespace

void cast_to_bf16(__nv_bfloat16* out, const float* in, std::size_t count, cudaStream_t stream) {
  // Weights sit at arbitrary offsets of the parameter buffer: vectorise only aligned pointers.
  const bool aligned = reinterpret_cast<std::uintptr_t>(in) % alignof(float4) == 0 &&
                       reinterpret_cast<std::uintptr_t>(out) % alignof(Bf16x4) == 0;
  const std::size_t quads = aligned ? count / 4 : 0;
  if (quads > 0) {
    cast_quads_kernel<<<cast_blocks(quads), kBlockThreads, 0, stream>>>(
        reinterpret_cast<Bf16x4*>(out), reinterpret_cast<const float4*>(in), quads);
  }
  const std::size_t rest = count - 4 * quads;
  if (rest > 0)
    cast_kernel<<<cast_blocks(rest), kBlockThreads, 0, stream>>>(out + 4 * quads, in + 4 * quads,
                                                                 rest);
}

void cast_from_bf16(float* out, const __nv_bfloat16* in, std::size_t count, cudaStream_t stream) {
  if (count > 0) widen_kernel<<<cast_blocks(count), kBlockThreads, 0, stream>>>(out, in, count);
}

}  // namespace tessera::cuda
