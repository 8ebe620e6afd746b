// Linear layers in bf16 mixed precision (see bf16_linear.hpp).
#include "backend/cpu/bf16_linear.hpp"

#include "backend/cpu/cpu_backend.hpp"
#include "core/error.hpp"
#include "core/half_floats.hpp"

namespace tessera::cpu {

void round_to_bf16(uint16_t* out, const float* in, std::size_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelThreshold)
  for (std::size_t i = 0; i < count; ++i) out[i] = bf16_from_float(in[i]);
}

Bf16Linear::Bf16Linear() {
  const MatmulShape probe{.trans_a = 'N',
                          .trans_b = 'T',
                          .m = 64,
                          .n = 64,
                          .k = 64,
                          .lda = 64,
                          .ldb = 64,
                          .ldc = 64,
                          .bf16_operands = true};
  std::string implementation = "none";
  try {
    implementation = matmuls_.implementation(probe);
  } catch (const InternalError&) {
    // No bf16 matmul at all on this CPU (oneDNN needs at least AVX-512 for one).
  }
  if (implementation == "none" || implementation.rfind("ref", 0) == 0) {
    throw UsageError(
        "train.precision = \"bf16\" on the cpu backend needs oneDNN's bf16 kernels, which need "
        "AVX-512 (and AMX or AVX512-BF16 to be fast); this CPU has none (oneDNN's bf16 matmul: " +
        implementation + "): set train.precision = \"fp32\"");
  }
}

uint16_t* Bf16Linear::rounded(int slot, const float* values, std::size_t count) {
  uint16_t* buffer = staging_[static_cast<std::size_t>(slot)].reserve(count);
  round_to_bf16(buffer, values, count);
  return buffer;
}

void Bf16Linear::forward(float* out, const float* in, const float* weight, const float* bias,
                         int rows, int in_features, int out_features) {
  const uint16_t* in_bf16 = rounded(0, in, static_cast<std::size_t>(rows) * in_features);
  const uint16_t* weight_bf16 =
      rounded(1, weight, static_cast<std::size_t>(out_features) * in_features);
  matmuls_.run(linear_gemm_shapes(rows, in_features, out_features, true, bias != nullptr).forward,
               in_bf16, weight_bf16, out, bias);
}

void Bf16Linear::backward(float* d_in, float* d_weight, const float* d_out, const float* in,
                          const float* weight, int rows, int in_features, int out_features) {
  const LinearGemmShapes shapes = linear_gemm_shapes(rows, in_features, out_features, true, false);
  const uint16_t* d_out_bf16 = rounded(0, d_out, static_cast<std::size_t>(rows) * out_features);
  if (d_in != nullptr) {
    const uint16_t* weight_bf16 =
        rounded(1, weight, static_cast<std::size_t>(out_features) * in_features);
    matmuls_.run(shapes.input_gradient, d_out_bf16, weight_bf16, d_in);
  }
  const uint16_t* in_bf16 = rounded(2, in, static_cast<std::size_t>(rows) * in_features);
  matmuls_.run(shapes.weight_gradient, d_out_bf16, in_bf16, d_weight);
}

}  // namespace tessera::cpu
