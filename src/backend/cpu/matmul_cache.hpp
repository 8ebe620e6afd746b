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
#include <tuple>

namespace tessera::cpu {

/// A row-major GEMM's shape: C[m, n] = alpha op(A) op(B) + beta C, with op(A) [m, k] and op(B)
/// [k, n]; trans_* are 'N' or 'T'; ld* are row strides in floats.
struct MatmulShape {
  char trans_a = 'N', trans_b = 'N';
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;
  float beta = 0.0f;

  auto key() const { return std::tie(trans_a, trans_b, m, n, k, lda, ldb, ldc, beta); }
  bool operator<(const MatmulShape& other) const { return key() < other.key(); }
};

class MatmulCache {
 public:
  MatmulCache();
  ~MatmulCache();
  MatmulCache(const MatmulCache&) = delete;
  MatmulCache& operator=(const MatmulCache&) = delete;

  /// C = op(A) op(B) + beta C (alpha 1) through the primitive for `shape`; throws on failure.
  void run(const MatmulShape& shape, const float* a, const float* b, float* c);

 private:
  struct Engine;
  struct Primitive;
  std::unique_ptr<Engine> engine_;
  std::map<MatmulShape, std::unique_ptr<Primitive>> primitives_;
};

}  // namespace tessera::cpu
