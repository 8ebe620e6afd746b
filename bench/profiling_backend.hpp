// A Backend that forwards every call to another backend and adds the call's wall time to a
// per-kernel total, for the per-kernel breakdown of a training step (bench_train_step).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace tessera::bench {

/// Seconds and calls spent in one kernel.
struct KernelTime {
  double seconds = 0.0;
  long calls = 0;
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  /// Totals per kernel name since the last reset; linear calls are keyed by their shape.
  const std::map<std::string, KernelTime>& totals() const { return totals_; }
  void reset() { totals_.clear(); }

  std::string_view name() const override { return inner_->name(); }
  DeviceDescription describe_device() const override { return inner_->describe_device(); }
  MemoryUse memory_use() const override { return inner_->memory_use(); }

  float* allocate(std::size_t count) override { return inner_->allocate(count); }
  void release(float* buffer) override { inner_->release(buffer); }
  int32_t* allocate_tokens(std::size_t count) override { return inner_->allocate_tokens(count); }
  void release_tokens(int32_t* buffer) override { inner_->release_tokens(buffer); }
  void copy_from_host(float* device, const float* host, std::size_t count) override;
  void copy_to_host(float* host, const float* device, std::size_t count) override;
  void copy_tokens_from_host(int32_t* device, const int32_t* host, std::size_t count) override;
  void fill_zero(float* buffer, std::size_t count) override;
  void copy_device(float* dst, const float* src, std::size_t count) override;

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

  void linear_gelu_forward(float* pre, float* act, const float* in, const float* weight,
                           const float* bias, int rows, int in_features, int out_features) override;
  void gelu_forward(float* out, const float* in, std::size_t count) override;
  void gelu_backward(float* d_in, const float* d_out, const float* in, std::size_t count) override;
  void swiglu_forward(float* out, const float* gate, const float* up, std::size_t count) override;
  void swiglu_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                       const float* up, std::size_t count) override;

  void rotary_forward(float* qkv, const AttentionShape& shape, float base) override;
  void rotary_backward(float* d_qkv, const AttentionShape& shape, float base) override;
  std::size_t attention_state_count(const AttentionShape& shape) const override {
    return inner_->attention_state_count(shape);
  }
  void attention_forward(float* out, float* state, const float* qkv,
                         const AttentionShape& shape) override;
  void attention_backward(float* d_qkv, const float* d_out, const float* qkv, const float* out,
                          const float* state, const AttentionShape& shape) override;

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
  /// Adds the time from construction to destruction to totals_[name].
  class Scope {
   public:
    Scope(ProfilingBackend& owner, std::string name)
        : owner_(owner), name_(std::move(name)), start_(std::chrono::steady_clock::now()) {}
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ProfilingBackend& owner_;
    std::string name_;
    std::chrono::steady_clock::time_point start_;
  };

  std::unique_ptr<Backend> inner_;
  std::map<std::string, KernelTime> totals_;
};

}  // namespace tessera::bench
