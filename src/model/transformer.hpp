// The decoder-only transformer, with an explicit forward and backward per layer (no autograd).
//
// Two families share one code path (see ModelConfig):
//   gpt2:   learned positions, LayerNorm with bias, biases everywhere, GELU(tanh) MLP,
//           output head tied to the token embedding.
//   openlm: rotary positions, LayerNorm (or RMSNorm), no linear biases, SwiGLU MLP,
//           untied output head, fp32 logits.
// Both are pre-norm: x + attn(norm(x)), then x + mlp(norm(x)), then a final norm and the head.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "model/activations.hpp"
#include "model/parameters.hpp"

namespace tessera {

class Transformer {
 public:
  Transformer(const ModelConfig& config, Backend& backend);
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  ParameterStore& parameters() { return parameters_; }
  const ParameterStore& parameters() const { return parameters_; }

  /// Forward pass of one microbatch kept in activation slot `slot` (one slot per microbatch in
  /// flight). tokens and targets are [batch, seq] on the host. With grad_scale > 0 the gradient
  /// of grad_scale * sum(losses) wrt the logits is kept for `backward(slot)`.
  /// Returns the sum over tokens of the per-token loss.
  double forward(int slot, const int32_t* tokens, const int32_t* targets, int batch,
                 float grad_scale);
  /// Adds this microbatch's parameter gradients into parameters().gradients().
  void backward(int slot);

  /// Logits [batch * seq, vocab] of the last forward in `slot`; valid only when that forward
  /// ran with grad_scale 0 (otherwise the buffer holds their gradient).
  const float* logits(int slot) const;

  /// Model FLOPs per trained token, forward and backward: 6 * (parameters used in matrix
  /// products) + 12 * n_layers * d_model * seq for attention scores (PaLM appendix B).
  double flops_per_token() const;

 private:
  struct LayerParameters;  // indices of one block's parameters
  void register_parameters();
  MicrobatchActivations& slot_activations(int slot, int batch);
  void ensure_scratch(int rows);
  void embed(MicrobatchActivations& acts, float* out);
  /// Reads the block's input from acts.blocks[layer].input, writes its output to `out`.
  void block_forward(int layer, MicrobatchActivations& acts, float* out);
  void block_backward(int layer, MicrobatchActivations& acts, float* d_residual);
  void norm_forward(float* out, float* mean, float* rstd, const float* in, std::size_t gain,
                    int rows);
  void norm_backward(float* d_in, const float* d_out, const float* in, std::size_t gain,
                     const float* mean, const float* rstd, int rows);
  float* bias_or_null(std::size_t index);
  float* bias_gradient_or_null(std::size_t index);

  ModelConfig config_;
  Backend& backend_;
  ParameterStore parameters_;
  std::vector<LayerParameters> layers_;
  std::size_t token_embedding_ = 0, position_embedding_ = 0, final_norm_ = 0, head_ = 0;
  std::map<int, MicrobatchActivations> slots_;
  std::vector<BufferPool> pools_;  // keeps every slot's buffers alive
  int scratch_rows_ = 0;
  std::unique_ptr<BufferPool> scratch_pool_;
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
  std::vector<float> host_losses_;  // per-token losses copied back from the backend
};

}  // namespace tessera
