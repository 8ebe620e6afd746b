// bf16 GEMMs through cuBLASLt: bf16 A and B, fp32 C and D, FP32 accumulation, and the BIAS
// epilogue (an fp32 bias added to every row of the row-major output) for the forward linear layer.
// Private to src/backend/cuda.
//
// Each shape gets one plan: the operation and layout descriptors and the algorithm
// cublasLtMatmulAlgoGetHeuristic ranks first. Plans are made on first use and kept, so a training
// step asks for heuristics only in its first iteration, and the same shape always runs the same
// algorithm (bitwise reproducible results from run to run).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <compare>
#include <cstddef>
#include <map>
#include <memory>

#include "backend/cuda/cuda_backend_impl.hpp"

namespace tessera::cuda {

class LtMatmul {
 public:
  explicit LtMatmul(cudaStream_t stream);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  /// Enqueues `job` on the stream and returns true; or returns false, with nothing enqueued, when
  /// cuBLASLt has no algorithm for this shape, alignment and epilogue.
  bool try_run(const Bf16Gemm& job);
  /// Device memory of the workspace every plan shares.
  std::size_t workspace_bytes() const { return workspace_.bytes; }

 private:
  /// What the heuristic's answer depends on: the layouts, the epilogue and the pointers'
  /// alignments (cuBLASLt's fastest kernels need 16-byte aligned operands).
  struct PlanKey {
    char trans_a, trans_b;
    int m, n, k, lda, ldb, ldc, batch;
    long long stride_a, stride_b, stride_c;
    bool bias;
    unsigned align_a, align_b, align_c, align_bias;
    auto operator<=>(const PlanKey&) const = default;
  };
  struct Plan;

  Plan& plan_for(const Bf16Gemm& job);
  std::unique_ptr<Plan> make_plan(const Bf16Gemm& job, const PlanKey& key) const;
  /// The heuristic's first algorithm for the plan's descriptors into plan.algo; false when none.
  bool choose_algorithm(Plan& plan, const PlanKey& key) const;

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBlock workspace_;  ///< shared by every matmul on the stream (they run one at a time)
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace tessera::cuda
