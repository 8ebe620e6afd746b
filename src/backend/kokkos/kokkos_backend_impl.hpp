// The Kokkos backend's class: the seam's ops, each defined in the file of its family
// (elementwise.cpp, embedding.cpp, normalization.cpp, linear.cpp, activations.cpp, rotary.cpp,
// attention.cpp, cross_entropy.cpp, adamw.cpp), memory in kokkos_backend.cpp.
//
// Kernels are lambdas over raw buffers wrapped in unmanaged views; they never read a member
// (a device kernel cannot dereference `this`, which lives on the host).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "backend/kokkos/kokkos_runtime.hpp"
#include "backend/memory_ledger.hpp"

namespace tessera::kokkos {

class KokkosBackend final : public Backend {
 public:
  KokkosBackend();
  ~KokkosBackend() override;
  KokkosBackend(const KokkosBackend&) = delete;
  KokkosBackend& operator=(const KokkosBackend&) = delete;

  std::string_view name() const override { return "kokkos"; }
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
  bool host_accessible() const override;

  void add(float* out, const float* a, const float* b, std::size_t count) override;
  void accumulate(float* out, const float* in, std::size_t count) override;
  void scale(float* x, float factor, std::size_t count) override;
  double sum_of_squares(const float* x, std::size_t count) override;
  double sum_of_squares_of_ranges(const float* base,
                                  const std::vector<BufferRange>& ranges) override;

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
  void* allocate_bytes(std::size_t bytes);
  void release_bytes(void* block);
  /// A work buffer of at least `count` floats, kept and grown between calls (attention's head
  /// copies, rotary's table); its contents do not survive the next call that asks for it.
  float* workspace(std::size_t count);
  /// Rotation by +angle (sign 1) or -angle (sign -1) of the query and key heads of qkv.
  void rotate(float* qkv, const AttentionShape& shape, float base, float sign);

  std::shared_ptr<KokkosRuntime> runtime_;  // first member: Kokkos outlives every buffer below
  MemoryLedger ledger_;
  float* workspace_ = nullptr;
  std::size_t workspace_count_ = 0;
};

}  // namespace tessera::kokkos
