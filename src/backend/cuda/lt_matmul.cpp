// cuBLASLt is column-major, like cuBLAS: the row-major C = op(A) op(B) runs as the column-major
// C^T = op(B)^T op(A)^T (gemm.cpp), so cuBLASLt's A is our B and its B our A, each with its own
// transpose flag, and D has n rows: the bias epilogue's vector (one value per row of D) is then
// one value per column of our row-major output, which is what a linear layer's bias is.
#include "backend/cuda/lt_matmul.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_check.hpp"

namespace tessera::cuda {
namespace {

/// NVIDIA's recommended cuBLASLt workspace for Hopper (it covers Ampere's 4 MiB too).
constexpr std::size_t kWorkspaceBytes = 32u << 20;

/// The largest power of two, up to 256, that divides the address (256 for null).
unsigned alignment(const void* pointer) {
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  if (address == 0) return 256;
  return static_cast<unsigned>(std::min<std::uintptr_t>(256, address & (~address + 1)));
}

int32_t operation(char trans) {
  return static_cast<int32_t>(trans == 'T' ? CUBLAS_OP_T : CUBLAS_OP_N);
}

using Preference = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>,
                                   decltype(&cublasLtMatmulPreferenceDestroy)>;

template <class Descriptor, class Attribute, class Value>
void set(cublasStatus_t (*setter)(Descriptor, Attribute, const void*, std::size_t),
         Descriptor descriptor, Attribute attribute, const Value& value) {
  TESSERA_CUDA_CHECK(setter(descriptor, attribute, &value, sizeof(value)));
}

/// A column-major layout of `rows` x `cols` with leading dimension `ld`, `batch` of them.
cublasLtMatrixLayout_t make_layout(cudaDataType type, int rows, int cols, int ld, int batch,
                                   long long stride) {
  cublasLtMatrixLayout_t layout = nullptr;
  TESSERA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&layout, type, static_cast<uint64_t>(rows),
                                                static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    set(cublasLtMatrixLayoutSetAttribute, layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
        int32_t{batch});
    set(cublasLtMatrixLayoutSetAttribute, layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
        int64_t{stride});
  }
  return layout;
}

}  // namespace

struct LtMatmul::Plan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  ///< cuBLASLt's A, B, C (= D)
  cublasLtMatmulAlgo_t algo{};
  bool found = false;  ///< false: cuBLASLt has no algorithm for this key

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (operation != nullptr) cublasLtMatmulDescDestroy(operation);
  }
};

LtMatmul::LtMatmul(cudaStream_t stream) : stream_(stream) {
  TESSERA_CUDA_CHECK(cublasLtCreate(&handle_));
  TESSERA_CUDA_CHECK(cudaMalloc(&workspace_.data, kWorkspaceBytes));
  workspace_.bytes = kWorkspaceBytes;
}

LtMatmul::~LtMatmul() {
  plans_.clear();
  cudaFree(workspace_.data);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

bool LtMatmul::try_run(const Bf16Gemm& job) {
  Plan& plan = plan_for(job);
  if (!plan.found) return false;
  if (job.bias != nullptr) {
    set(cublasLtMatmulDescSetAttribute, plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
        static_cast<const void*>(job.bias));
  }
  TESSERA_CUDA_CHECK(cublasLtMatmul(handle_, plan.operation, &job.alpha, job.b, plan.a, job.a,
                                    plan.b, &job.beta, job.c, plan.c, job.c, plan.c, &plan.algo,
                                    workspace_.data, workspace_.bytes, stream_));
  return true;
}

LtMatmul::Plan& LtMatmul::plan_for(const Bf16Gemm& job) {
  const GemmShape& s = job.shape;
  PlanKey key{};
  key.trans_a = s.trans_a;
  key.trans_b = s.trans_b;
  key.m = s.m, key.n = s.n, key.k = s.k;
  key.lda = s.lda, key.ldb = s.ldb, key.ldc = s.ldc;
  key.batch = job.batch;
  key.stride_a = job.stride_a, key.stride_b = job.stride_b, key.stride_c = job.stride_c;
  key.bias = job.bias != nullptr;
  key.align_a = alignment(job.a), key.align_b = alignment(job.b), key.align_c = alignment(job.c);
  key.align_bias = alignment(job.bias);
  auto found = plans_.find(key);
  if (found == plans_.end()) found = plans_.emplace(key, make_plan(job, key)).first;
  return *found->second;
}

std::unique_ptr<LtMatmul::Plan> LtMatmul::make_plan(const Bf16Gemm& job, const PlanKey& key) const {
  const GemmShape& s = job.shape;
  auto plan = std::make_unique<Plan>();
  TESSERA_CUDA_CHECK(cublasLtMatmulDescCreate(&plan->operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set(cublasLtMatmulDescSetAttribute, plan->operation, CUBLASLT_MATMUL_DESC_TRANSA,
      operation(s.trans_b));
  set(cublasLtMatmulDescSetAttribute, plan->operation, CUBLASLT_MATMUL_DESC_TRANSB,
      operation(s.trans_a));
  if (key.bias) {
    set(cublasLtMatmulDescSetAttribute, plan->operation, CUBLASLT_MATMUL_DESC_EPILOGUE,
        static_cast<uint32_t>(CUBLASLT_EPILOGUE_BIAS));
    set(cublasLtMatmulDescSetAttribute, plan->operation, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
        static_cast<int32_t>(CUDA_R_32F));
    // The heuristic reads the pointer's value for its alignment.
    set(cublasLtMatmulDescSetAttribute, plan->operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
        static_cast<const void*>(job.bias));
  }
  // Stored (column-major) extents: an operand used as op = N is rows x k, with op = T k x rows.
  const bool b_plain = s.trans_b == 'N', a_plain = s.trans_a == 'N';
  plan->a = make_layout(CUDA_R_16BF, b_plain ? s.n : s.k, b_plain ? s.k : s.n, s.ldb, job.batch,
                        job.stride_b);
  plan->b = make_layout(CUDA_R_16BF, a_plain ? s.k : s.m, a_plain ? s.m : s.k, s.lda, job.batch,
                        job.stride_a);
  plan->c = make_layout(CUDA_R_32F, s.n, s.m, s.ldc, job.batch, job.stride_c);

  plan->found = choose_algorithm(*plan, key);
  return plan;
}

bool LtMatmul::choose_algorithm(Plan& plan, const PlanKey& key) const {
  cublasLtMatmulPreference_t raw = nullptr;
  TESSERA_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&raw));
  const Preference preference(raw, &cublasLtMatmulPreferenceDestroy);
  set(cublasLtMatmulPreferenceSetAttribute, raw, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
      uint64_t{workspace_.bytes});
  // cuBLASLt's A is our B and its B our A (see the top of this file).
  set(cublasLtMatmulPreferenceSetAttribute, raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
      uint32_t{key.align_b});
  set(cublasLtMatmulPreferenceSetAttribute, raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      uint32_t{key.align_a});
  set(cublasLtMatmulPreferenceSetAttribute, raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
      uint32_t{key.align_c});
  set(cublasLtMatmulPreferenceSetAttribute, raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
      uint32_t{key.align_c});
  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle_, plan.operation, plan.a, plan.b, plan.c, plan.c, raw, 1, &result, &count);
  // NOT_SUPPORTED is cuBLASLt's "no algorithm for this problem": the caller falls back.
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || count == 0) return false;
  TESSERA_CUDA_CHECK(status);
  plan.algo = result.algo;
  return true;
}

}  // namespace tessera::cuda
