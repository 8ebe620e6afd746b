// Private to src/backend/cpu: linear layers in bf16 mixed precision (GemmPrecision::bf16).
//
// Like PyTorch's autocast and the CUDA backend's bf16 precision: each GEMM rounds its two
// operands to bf16 (to nearest, ties to even) and accumulates in fp32 through oneDNN's bf16
// matmul kernels, which use AMX tiles or AVX512-BF16 dot products; outputs, the bias, bias
// gradients and everything outside the linear layers stay fp32. Attention's per-block GEMMs stay
// fp32 on the CPU (8 % of an fp32 step, 18 % of a bf16 one): in bf16 they would round Q, K, V and
// the probabilities block by block, the next gain for this precision.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "backend/cpu/host_memory.hpp"
#include "backend/cpu/matmul_cache.hpp"

namespace tessera::cpu {

/// out[i] = in[i] rounded to bf16 (to nearest, ties to even; NaN stays NaN), as the upper 16
/// bits of the fp32 pattern.
void round_to_bf16(uint16_t* out, const float* in, std::size_t count);

class Bf16Linear {
 public:
  /// Throws UsageError when oneDNN has no bf16 matmul on this CPU (it needs AVX-512) or only its
  /// reference loop, which would make training hundreds of times slower than fp32. Without AMX or
  /// AVX512-BF16, oneDNN emulates the bf16 products on AVX-512 and runs, slower than with them.
  Bf16Linear();

  /// out[rows, out] = in[rows, in] weight[out, in]^T + bias (bias may be null).
  void forward(float* out, const float* in, const float* weight, const float* bias, int rows,
               int in_features, int out_features);

  /// d_in[rows, in] = d_out weight (skipped when d_in is null); d_weight += d_out^T in.
  void backward(float* d_in, float* d_weight, const float* d_out, const float* in,
                const float* weight, int rows, int in_features, int out_features);

 private:
  /// bf16 copies of the operands; slot 0: activations or d_out, 1: the weight, 2: the input in
  /// backward. Grown on demand, never shrunk.
  uint16_t* rounded(int slot, const float* values, std::size_t count);

  MatmulCache matmuls_;
  std::array<HostArray<uint16_t>, 3> staging_;
};

}  // namespace tessera::cpu
