#include "bench/profiling_backend.hpp"

namespace tessera::bench {
namespace {

std::string linear_name(const char* pass, int in_features, int out_features) {
  return std::string("linear_") + pass + " " + std::to_string(in_features) + "->" +
         std::to_string(out_features);
}

}  // namespace

ProfilingBackend::Scope::~Scope() {
  KernelTime& total = owner_.totals_[name_];
  total.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  ++total.calls;
}

void ProfilingBackend::copy_from_host(float* device, const float* host, std::size_t count) {
  Scope scope(*this, "copy");
  inner_->copy_from_host(device, host, count);
}

void ProfilingBackend::copy_to_host(float* host, const float* device, std::size_t count) {
  Scope scope(*this, "copy");
  inner_->copy_to_host(host, device, count);
}

void ProfilingBackend::copy_tokens_from_host(int32_t* device, const int32_t* host,
                                             std::size_t count) {
  Scope scope(*this, "copy");
  inner_->copy_tokens_from_host(device, host, count);
}

void ProfilingBackend::fill_zero(float* buffer, std::size_t count) {
  Scope scope(*this, "fill_zero");
  inner_->fill_zero(buffer, count);
}

void ProfilingBackend::copy_device(float* dst, const float* src, std::size_t count) {
  Scope scope(*this, "copy");
  inner_->copy_device(dst, src, count);
}

void ProfilingBackend::add(float* out, const float* a, const float* b, std::size_t count) {
  Scope scope(*this, "add");
  inner_->add(out, a, b, count);
}

void ProfilingBackend::accumulate(float* out, const float* in, std::size_t count) {
  Scope scope(*this, "accumulate (residual)");
  inner_->accumulate(out, in, count);
}

void ProfilingBackend::scale(float* x, float factor, std::size_t count) {
  Scope scope(*this, "scale (clipping)");
  inner_->scale(x, factor, count);
}

double ProfilingBackend::sum_of_squares(const float* x, std::size_t count) {
  Scope scope(*this, "sum_of_squares (grad norm)");
  return inner_->sum_of_squares(x, count);
}

double ProfilingBackend::sum_of_squares_of_ranges(const float* base,
                                                  const std::vector<BufferRange>& ranges) {
  Scope scope(*this, "sum_of_squares (grad norm)");
  return inner_->sum_of_squares_of_ranges(base, ranges);
}

void ProfilingBackend::embedding_forward(float* out, const int32_t* tokens, const float* table,
                                         int rows, int dim, int vocab_begin, int vocab_local) {
  Scope scope(*this, "embedding_forward");
  inner_->embedding_forward(out, tokens, table, rows, dim, vocab_begin, vocab_local);
}

void ProfilingBackend::embedding_backward(float* d_table, const int32_t* tokens, const float* d_out,
                                          int rows, int dim, int vocab_begin, int vocab_local) {
  Scope scope(*this, "embedding_backward");
  inner_->embedding_backward(d_table, tokens, d_out, rows, dim, vocab_begin, vocab_local);
}

void ProfilingBackend::position_forward(float* out, const float* table, int rows, int seq,
                                        int dim) {
  Scope scope(*this, "position_forward");
  inner_->position_forward(out, table, rows, seq, dim);
}

void ProfilingBackend::position_backward(float* d_table, const float* d_out, int rows, int seq,
                                         int dim) {
  Scope scope(*this, "position_backward");
  inner_->position_backward(d_table, d_out, rows, seq, dim);
}

void ProfilingBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                         const float* gain, const float* bias, int rows, int dim,
                                         float eps) {
  Scope scope(*this, "layernorm_forward");
  inner_->layernorm_forward(out, mean, rstd, in, gain, bias, rows, dim, eps);
}

void ProfilingBackend::layernorm_backward(float* d_in, float* d_gain, float* d_bias,
                                          const float* d_out, const float* in, const float* gain,
                                          const float* mean, const float* rstd, int rows, int dim) {
  Scope scope(*this, "layernorm_backward");
  inner_->layernorm_backward(d_in, d_gain, d_bias, d_out, in, gain, mean, rstd, rows, dim);
}

void ProfilingBackend::rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain,
                                       int rows, int dim, float eps) {
  Scope scope(*this, "rmsnorm_forward");
  inner_->rmsnorm_forward(out, rstd, in, gain, rows, dim, eps);
}

void ProfilingBackend::rmsnorm_backward(float* d_in, float* d_gain, const float* d_out,
                                        const float* in, const float* gain, const float* rstd,
                                        int rows, int dim) {
  Scope scope(*this, "rmsnorm_backward");
  inner_->rmsnorm_backward(d_in, d_gain, d_out, in, gain, rstd, rows, dim);
}

void ProfilingBackend::linear_forward(float* out, const float* in, const float* weight,
                                      const float* bias, int rows, int in_features,
                                      int out_features) {
  Scope scope(*this, linear_name("forward", in_features, out_features));
  inner_->linear_forward(out, in, weight, bias, rows, in_features, out_features);
}

void ProfilingBackend::linear_backward(float* d_in, float* d_weight, float* d_bias,
                                       const float* d_out, const float* in, const float* weight,
                                       int rows, int in_features, int out_features) {
  Scope scope(*this, linear_name("backward", in_features, out_features));
  inner_->linear_backward(d_in, d_weight, d_bias, d_out, in, weight, rows, in_features,
                          out_features);
}

void ProfilingBackend::linear_gelu_forward(float* pre, float* act, const float* in,
                                           const float* weight, const float* bias, int rows,
                                           int in_features, int out_features) {
  Scope scope(*this, linear_name("gelu_forward", in_features, out_features));
  inner_->linear_gelu_forward(pre, act, in, weight, bias, rows, in_features, out_features);
}

void ProfilingBackend::gelu_forward(float* out, const float* in, std::size_t count) {
  Scope scope(*this, "gelu_forward");
  inner_->gelu_forward(out, in, count);
}

void ProfilingBackend::gelu_backward(float* d_in, const float* d_out, const float* in,
                                     std::size_t count) {
  Scope scope(*this, "gelu_backward");
  inner_->gelu_backward(d_in, d_out, in, count);
}

void ProfilingBackend::swiglu_forward(float* out, const float* gate, const float* up,
                                      std::size_t count) {
  Scope scope(*this, "swiglu_forward");
  inner_->swiglu_forward(out, gate, up, count);
}

void ProfilingBackend::swiglu_backward(float* d_gate, float* d_up, const float* d_out,
                                       const float* gate, const float* up, std::size_t count) {
  Scope scope(*this, "swiglu_backward");
  inner_->swiglu_backward(d_gate, d_up, d_out, gate, up, count);
}

void ProfilingBackend::rotary_forward(float* qkv, const AttentionShape& shape, float base) {
  Scope scope(*this, "rotary_forward");
  inner_->rotary_forward(qkv, shape, base);
}

void ProfilingBackend::rotary_backward(float* d_qkv, const AttentionShape& shape, float base) {
  Scope scope(*this, "rotary_backward");
  inner_->rotary_backward(d_qkv, shape, base);
}

void ProfilingBackend::attention_forward(float* out, float* state, const float* qkv,
                                         const AttentionShape& shape) {
  Scope scope(*this, "attention_forward");
  inner_->attention_forward(out, state, qkv, shape);
}

void ProfilingBackend::attention_backward(float* d_qkv, const float* d_out, const float* qkv,
                                          const float* out, const float* state,
                                          const AttentionShape& shape) {
  Scope scope(*this, "attention_backward");
  inner_->attention_backward(d_qkv, d_out, qkv, out, state, shape);
}

void ProfilingBackend::softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                                             const int32_t* targets, int rows, int vocab,
                                             float z_loss, float grad_scale) {
  Scope scope(*this, "softmax_cross_entropy");
  inner_->softmax_cross_entropy(losses, d_logits, logits, targets, rows, vocab, z_loss, grad_scale);
}

void ProfilingBackend::cross_entropy_shard_stats(float* row_max, float* row_sum,
                                                 float* target_logit, const float* logits,
                                                 const int32_t* targets, int rows, int vocab_local,
                                                 int vocab_begin) {
  Scope scope(*this, "cross_entropy_shard_stats");
  inner_->cross_entropy_shard_stats(row_max, row_sum, target_logit, logits, targets, rows,
                                    vocab_local, vocab_begin);
}

void ProfilingBackend::rebase_row_sums(float* row_sum, const float* row_max,
                                       const float* global_max, int rows) {
  Scope scope(*this, "rebase_row_sums");
  inner_->rebase_row_sums(row_sum, row_max, global_max, rows);
}

void ProfilingBackend::cross_entropy_shard_finish(float* losses, float* d_logits,
                                                  const float* logits, const int32_t* targets,
                                                  const float* global_max, const float* global_sum,
                                                  const float* target_logit, int rows,
                                                  int vocab_local, int vocab_begin, float z_loss,
                                                  float grad_scale) {
  Scope scope(*this, "cross_entropy_shard_finish");
  inner_->cross_entropy_shard_finish(losses, d_logits, logits, targets, global_max, global_sum,
                                     target_logit, rows, vocab_local, vocab_begin, z_loss,
                                     grad_scale);
}

void ProfilingBackend::adamw_update(float* param, const float* grad, float* m, float* v,
                                    const std::vector<AdamWSegment>& segments,
                                    const AdamWStep& step) {
  Scope scope(*this, "adamw_update");
  inner_->adamw_update(param, grad, m, v, segments, step);
}

}  // namespace tessera::bench
