// Private to src/backend/cpu: the CPU implementation of the kernel seam. Users go through
// make_cpu_backend() in backend/backend.hpp. Each op family's methods live in their own .cpp.
//
// GEMMs go through oneDNN: dnnl_sgemm, and the matmul primitive for the weight gradients
// (matmul_cache.hpp says why), or in bf16 precision the linear layers through Bf16Linear;
// everything else is OpenMP loops. Every kernel
// is deterministic for a fixed thread count: parallel work is split so that each output element
// is reduced by exactly one thread in a fixed order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backend/backend.hpp"
#include "backend/cpu/bf16_linear.hpp"
#include "backend/cpu/host_memory.hpp"
#include "backend/cpu/matmul_cache.hpp"
#include "backend/memory_ledger.hpp"

namespace tessera::cpu {

/// C = alpha op(A) op(B) + beta C, row-major, through dnnl_sgemm; throws on a failed call.
/// trans_a / trans_b are 'N' or 'T'; C is [m, n]; lda, ldb, ldc are row strides in floats.
void sgemm(char trans_a, char trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);

/// Same as sgemm, but returns false instead of throwing, for use inside OpenMP regions (an
/// exception may not leave one).
bool try_sgemm(char trans_a, char trans_b, int m, int n, int k, float alpha, const float* a,
               int lda, const float* b, int ldb, float beta, float* c, int ldc);

/// Loops of fewer elements than this run on the calling thread: forking costs more than it saves.
inline constexpr std::size_t kParallelThreshold = 1 << 15;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(GemmPrecision precision = GemmPrecision::fp32);
  ~CpuBackend() override;
  CpuBackend(const CpuBackend&) = delete;
  CpuBackend& operator=(const CpuBackend&) = delete;

  std::string_view name() const override { return "cpu"; }
  DeviceDescription describe_device() const override;

  float* allocate(std::size_t count) override;
  void release(float* buffer) override;
  int32_t* allocate_tokens(std::size_t count) override;
  void release_tokens(int32_t* buffer) override;
  void copy_from_host(float* device, const float* host, std::size_t count) override;
  void copy_to_host(float* host, const float* device, std::size_t count) override;
  void copy_tokens_from_host(int32_t* device, const int32_t* host, std::size_t count) override;
  void fill_zero(float* buffer, std::size_t count) override;
  void copy_device(float* dst, const float* src, std::size_t count) override;
  MemoryUse memory_use() const override;
  bool host_accessible() const override { return true; }

  void add(float* out, const float* a, const float* b, std::size_t count) override;
  void accumulate(float* out, const float* in, std::size_t count) override;
  void scale(float* x, float factor, std::size_t count) override;
  double sum_of_squares(const float* x, std::size_t count) override;

  void embedding_forward(float* out, const int32_t* tokens, const float* table, int rows, int dim,
                         int vocab_begin, int vocab_local) override;
  void embedding_backward(float* d_table, const int32_t* tokens, const float* d_out, int rows,
                          int dim, int vocab_begin, int vocab_local) override;
  void position_forward(float* out, const float* table, int rows, int seq, int dim) override;
  void position_backward(float* d_table, const float* d_out, int rows, int seq, int dim) override;

  void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* gain,
                         const float* bias, int rows, int dim, float eps) override;
  void layernorm_backward(float* d_in, float* d_gain, float* d_bias, const float* d_out,
                          const float* in, const float* gain, const float* mean, const float* rstd,
                          int rows, int dim) override;
  void rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain, int rows,
                       int dim, float eps) override;
  void rmsnorm_backward(float* d_in, float* d_gain, const float* d_out, const float* in,
                        const float* gain, const float* rstd, int rows, int dim) override;

  void linear_forward(float* out, const float* in, const float* weight, const float* bias, int rows,
                      int in_features, int out_features) override;
  void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                       const float* in, const float* weight, int rows, int in_features,
                       int out_features) override;
  void linear_gelu_forward(float* pre, float* act, const float* in, const float* weight,
                           const float* bias, int rows, int in_features, int out_features) override;

  void gelu_forward(float* out, const float* in, std::size_t count) override;
  void gelu_backward(float* d_in, const float* d_out, const float* in, std::size_t count) override;
  void swiglu_forward(float* out, const float* gate, const float* up, std::size_t count) override;
  void swiglu_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                       const float* up, std::size_t count) override;

  void rotary_forward(float* qkv, const AttentionShape& shape, float base) override;
  void rotary_backward(float* d_qkv, const AttentionShape& shape, float base) override;
  void attention_forward(float* out, float* probs, const float* qkv,
                         const AttentionShape& shape) override;
  void attention_backward(float* d_qkv, const float* d_out, const float* qkv, const float* out,
                          const float* probs, const AttentionShape& shape) override;

  void softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                             const int32_t* targets, int rows, int vocab, float z_loss,
                             float grad_scale) override;
  void cross_entropy_shard_stats(float* row_max, float* row_sum, float* target_logit,
                                 const float* logits, const int32_t* targets, int rows,
                                 int vocab_local, int vocab_begin) override;
  void rebase_row_sums(float* row_sum, const float* row_max, const float* global_max,
                       int rows) override;
  void cross_entropy_shard_finish(float* losses, float* d_logits, const float* logits,
                                  const int32_t* targets, const float* global_max,
                                  const float* global_sum, const float* target_logit, int rows,
                                  int vocab_local, int vocab_begin, float z_loss,
                                  float grad_scale) override;

  void adamw_update(float* param, const float* grad, float* m, float* v,
                    const std::vector<AdamWSegment>& segments, const AdamWStep& step) override;

 private:
  /// allocate_host's zeroed block, recorded in the ledger; released by release_recorded.
  void* allocate_recorded(std::size_t bytes);
  void release_recorded(void* buffer);
  /// Scratch of at least `count` floats, owned by the backend and grown (never shrunk) on demand,
  /// so kernels allocate only the first time they see a larger shape. Not safe for concurrent
  /// calls on one backend object (none of the kernels are).
  float* scratch(std::size_t count);

  /// Fills scratch with cos and sin of every (position, pair) angle: [seq, head_dim/2] each.
  const float* rotary_table(const AttentionShape& shape, float base);

  HostArray<float> scratch_;
  MemoryLedger ledger_;  ///< allocate's buffers and the scratch
  MatmulCache weight_gradient_matmuls_;
  std::unique_ptr<Bf16Linear> bf16_linear_;  ///< set in bf16 precision: the linear layers' GEMMs
};

}  // namespace tessera::cpu
