// Private to src/backend/cpu: GEMMs through oneDNN's matmul primitive, one primitive per shape
// built on first use and kept.
//
// dnnl_sgemm is the faster path for the forward and input-gradient GEMMs of a training step,
// but the weight gradient (d_weight += d_out^T in, a transposed A with a long k) runs 15-30 %
// faster through matmul's brgemm kernels, the vocabulary head's most of all (bench/bench_step_gemms
// measures both). The choice is fixed per call site, never timed at run time,
// so every run computes with the same kernels and stays bitwise reproducible.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace tessera::cpu {

/// A row-major GEMM's shape: C[m, n] = op(A) op(B) + bias + beta C, with op(A) [m, k] and
/// op(B) [k, n]; trans_* are 'N' or 'T'; ld* are row strides in elements. C is fp32; A and B are
/// fp32, or bf16 (raw 16-bit patterns) with fp32 accumulation; the bias, when there is one, is
/// fp32 [n], broadcast over the rows.
struct MatmulShape {
  char trans_a = 'N', trans_b = 'N';
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;
  float beta = 0.0f;
  bool bf16_operands = false;
  bool with_bias = false;

  auto key() const {
    return std::tie(trans_a, trans_b, m, n, k, lda, ldb, ldc, beta, bf16_operands, with_bias);
  }
  bool operator<(const MatmulShape& other) const { return key() < other.key(); }
};

/// The three GEMMs of a linear layer out[rows, out] = in[rows, in] weight[out, in]^T (+ bias):
/// the forward, d_in = d_out weight, and d_weight += d_out^T in (beta 1). bf16 makes the
/// operands bf16; the forward has a bias when `with_bias`.
struct LinearGemmShapes {
  MatmulShape forward, input_gradient, weight_gradient;
};
LinearGemmShapes linear_gemm_shapes(int rows, int in_features, int out_features, bool bf16,
                                    bool with_bias);

class MatmulCache {
 public:
  MatmulCache();
  ~MatmulCache();
  MatmulCache(const MatmulCache&) = delete;
  MatmulCache& operator=(const MatmulCache&) = delete;

  /// C = op(A) op(B) + bias + beta C through the primitive for `shape`; throws on failure. A and
  /// B point to floats, or to bf16 patterns (uint16_t) when shape.bf16_operands.
  void run(const MatmulShape& shape, const void* a, const void* b, float* c,
           const float* bias = nullptr);

  /// The oneDNN implementation that runs `shape` (e.g. "brg:avx512_core_amx_bf16"), building its
  /// primitive if needed.
  std::string implementation(const MatmulShape& shape);

 private:
  struct Engine;
  struct Primitive;
  const Primitive& primitive(const MatmulShape& shape);
  std::unique_ptr<Engine> engine_;
  std::map<MatmulShape, std::unique_ptr<Primitive>> primitives_;
};

}  // namespace tessera::cpu
