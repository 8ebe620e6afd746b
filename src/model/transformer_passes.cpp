// Forward and backward passes of the transformer, layer by layer.
#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "model/transformer.hpp"
#include "model/transformer_internals.hpp"

namespace tessera {

void Transformer::norm_forward(float* out, float* mean, float* rstd, const float* in,
                               std::size_t gain, int rows) {
  const float* g = parameters_.value(gain);
  if (config_.norm == NormKind::layernorm) {
    backend_.layernorm_forward(out, mean, rstd, in, g, parameters_.value(gain + 1), rows,
                               config_.d_model, config_.norm_eps);
  } else {
    backend_.rmsnorm_forward(out, rstd, in, g, rows, config_.d_model, config_.norm_eps);
  }
}

void Transformer::norm_backward(float* d_in, const float* d_out, const float* in, std::size_t gain,
                                const float* mean, const float* rstd, int rows) {
  if (config_.norm == NormKind::layernorm) {
    backend_.layernorm_backward(d_in, parameters_.gradient(gain), parameters_.gradient(gain + 1),
                                d_out, in, parameters_.value(gain), mean, rstd, rows,
                                config_.d_model);
  } else {
    backend_.rmsnorm_backward(d_in, parameters_.gradient(gain), d_out, in,
                              parameters_.value(gain), rstd, rows, config_.d_model);
  }
}

void Transformer::embed(MicrobatchActivations& acts, float* out) {
  const int rows = acts.batch * config_.seq_len;
  backend_.embedding_forward(out, acts.tokens, parameters_.value(token_embedding_), rows,
                             config_.d_model, 0, config_.vocab_size);
  if (config_.learned_positions()) {
    backend_.position_forward(out, parameters_.value(position_embedding_), rows, config_.seq_len,
                              config_.d_model);
  }
}

void Transformer::block_forward(int layer, MicrobatchActivations& acts, float* out) {
  const LayerParameters& lp = layers_[static_cast<std::size_t>(layer)];
  BlockActivations& a = acts.blocks[static_cast<std::size_t>(layer)];
  const int rows = acts.batch * config_.seq_len;
  const int d = config_.d_model, ffn = config_.ffn_hidden;
  const AttentionShape shape{acts.batch, config_.seq_len, config_.n_heads, config_.head_dim()};

  norm_forward(a.attn_norm_out, a.attn_norm_mean, a.attn_norm_rstd, a.input, lp.attn_norm_gain,
               rows);
  backend_.linear_forward(a.qkv, a.attn_norm_out, parameters_.value(lp.qkv_weight),
                          bias_or_null(lp.qkv_bias), rows, d, 3 * d);
  if (config_.rotary()) backend_.rotary_forward(a.qkv, shape, config_.rotary_base);
  backend_.attention_forward(a.attn_out, a.probs, a.qkv, shape);
  // The attention branch's projection lands in `mid`, then the residual is added in place.
  backend_.linear_forward(a.mid, a.attn_out, parameters_.value(lp.out_weight),
                          bias_or_null(lp.out_bias), rows, d, d);
  backend_.accumulate(a.mid, a.input, static_cast<std::size_t>(rows) * d);

  norm_forward(a.mlp_norm_out, a.mlp_norm_mean, a.mlp_norm_rstd, a.mid, lp.mlp_norm_gain, rows);
  const std::size_t hidden = static_cast<std::size_t>(rows) * ffn;
  backend_.linear_forward(a.mlp_hidden, a.mlp_norm_out, parameters_.value(lp.fc_weight),
                          bias_or_null(lp.fc_bias), rows, d, ffn);
  if (config_.swiglu()) {
    backend_.linear_forward(a.mlp_up, a.mlp_norm_out, parameters_.value(lp.up_weight), nullptr,
                            rows, d, ffn);
    backend_.swiglu_forward(a.mlp_act, a.mlp_hidden, a.mlp_up, hidden);
  } else {
    backend_.gelu_forward(a.mlp_act, a.mlp_hidden, hidden);
  }
  backend_.linear_forward(out, a.mlp_act, parameters_.value(lp.proj_weight),
                          bias_or_null(lp.proj_bias), rows, ffn, d);
  backend_.accumulate(out, a.mid, static_cast<std::size_t>(rows) * d);
}

double Transformer::forward(int slot, const int32_t* tokens, const int32_t* targets, int batch,
                            float grad_scale) {
  MicrobatchActivations& acts = slot_activations(slot, batch);
  const int rows = batch * config_.seq_len;
  const std::size_t urows = static_cast<std::size_t>(rows);
  backend_.copy_tokens_from_host(acts.tokens, tokens, urows);
  backend_.copy_tokens_from_host(acts.targets, targets, urows);

  // Each block writes its output straight into the next block's saved input.
  embed(acts, acts.blocks.empty() ? acts.output : acts.blocks[0].input);
  for (int layer = 0; layer < config_.n_layers; ++layer) {
    const bool last = layer + 1 == config_.n_layers;
    float* out = last ? acts.output : acts.blocks[static_cast<std::size_t>(layer) + 1].input;
    block_forward(layer, acts, out);
  }
  norm_forward(acts.final_norm_out, acts.final_norm_mean, acts.final_norm_rstd, acts.output,
               final_norm_, rows);
  backend_.linear_forward(acts.logits, acts.final_norm_out, parameters_.value(head_), nullptr,
                          rows, config_.d_model, config_.vocab_size);
  // When training, the logits buffer is overwritten by its own gradient (saves rows x vocab).
  float* d_logits = grad_scale > 0.0f ? acts.logits : nullptr;
  backend_.softmax_cross_entropy(acts.losses, d_logits, acts.logits, acts.targets, rows,
                                 config_.vocab_size, config_.z_loss, grad_scale);
  host_losses_.resize(std::max(host_losses_.size(), urows));  // grows only on a new batch size
  backend_.copy_to_host(host_losses_.data(), acts.losses, urows);
  double sum = 0.0;
  for (std::size_t row = 0; row < urows; ++row) sum += host_losses_[row];
  return sum;
}

void Transformer::block_backward(int layer, MicrobatchActivations& acts, float* d_residual) {
  const LayerParameters& lp = layers_[static_cast<std::size_t>(layer)];
  const BlockActivations& a = acts.blocks[static_cast<std::size_t>(layer)];
  Scratch& s = *scratch_;
  const int rows = acts.batch * config_.seq_len;
  const int d = config_.d_model, ffn = config_.ffn_hidden;
  const std::size_t width = static_cast<std::size_t>(rows) * d;
  const AttentionShape shape{acts.batch, config_.seq_len, config_.n_heads, config_.head_dim()};

  // MLP branch: d_residual is the gradient wrt the block output = wrt `mid` through the skip.
  backend_.linear_backward(s.d_act, parameters_.gradient(lp.proj_weight),
                           bias_gradient_or_null(lp.proj_bias), d_residual, a.mlp_act,
                           parameters_.value(lp.proj_weight), rows, ffn, d);
  if (config_.swiglu()) {
    backend_.swiglu_backward(s.d_hidden, s.d_up, s.d_act, a.mlp_hidden, a.mlp_up,
                             static_cast<std::size_t>(rows) * ffn);
    backend_.linear_backward(s.d_norm_up, parameters_.gradient(lp.up_weight), nullptr, s.d_up,
                             a.mlp_norm_out, parameters_.value(lp.up_weight), rows, d, ffn);
  } else {
    backend_.gelu_backward(s.d_hidden, s.d_act, a.mlp_hidden, static_cast<std::size_t>(rows) * ffn);
  }
  backend_.linear_backward(s.d_norm, parameters_.gradient(lp.fc_weight),
                           bias_gradient_or_null(lp.fc_bias), s.d_hidden, a.mlp_norm_out,
                           parameters_.value(lp.fc_weight), rows, d, ffn);
  if (config_.swiglu()) backend_.accumulate(s.d_norm, s.d_norm_up, width);
  norm_backward(s.d_branch, s.d_norm, a.mid, lp.mlp_norm_gain, a.mlp_norm_mean, a.mlp_norm_rstd,
                rows);
  backend_.accumulate(d_residual, s.d_branch, width);  // now the gradient wrt `mid`

  // Attention branch.
  backend_.linear_backward(s.d_attn, parameters_.gradient(lp.out_weight),
                           bias_gradient_or_null(lp.out_bias), d_residual, a.attn_out,
                           parameters_.value(lp.out_weight), rows, d, d);
  backend_.attention_backward(s.d_qkv, s.d_attn, a.qkv, a.probs, shape);
  if (config_.rotary()) backend_.rotary_backward(s.d_qkv, shape, config_.rotary_base);
  backend_.linear_backward(s.d_norm, parameters_.gradient(lp.qkv_weight),
                           bias_gradient_or_null(lp.qkv_bias), s.d_qkv, a.attn_norm_out,
                           parameters_.value(lp.qkv_weight), rows, d, 3 * d);
  norm_backward(s.d_branch, s.d_norm, a.input, lp.attn_norm_gain, a.attn_norm_mean,
                a.attn_norm_rstd, rows);
  backend_.accumulate(d_residual, s.d_branch, width);  // now the gradient wrt the block input
}

void Transformer::backward(int slot) {
  auto found = slots_.find(slot);
  TESSERA_CHECK(found != slots_.end(), "backward of slot " + std::to_string(slot) +
                                           " without a forward");
  MicrobatchActivations& acts = found->second;
  const int rows = acts.batch * config_.seq_len;
  ensure_scratch(rows);
  Scratch& s = *scratch_;
  const int d = config_.d_model;

  // acts.logits holds grad_scale * d(loss)/d(logits) since the fused loss of forward().
  backend_.linear_backward(s.d_norm, parameters_.gradient(head_), nullptr, acts.logits,
                           acts.final_norm_out, parameters_.value(head_), rows, d,
                           config_.vocab_size);
  norm_backward(s.d_residual, s.d_norm, acts.output, final_norm_, acts.final_norm_mean,
                acts.final_norm_rstd, rows);
  for (int layer = config_.n_layers - 1; layer >= 0; --layer) {
    block_backward(layer, acts, s.d_residual);
  }
  backend_.embedding_backward(parameters_.gradient(token_embedding_), acts.tokens, s.d_residual,
                              rows, d, 0, config_.vocab_size);
  if (config_.learned_positions()) {
    backend_.position_backward(parameters_.gradient(position_embedding_), s.d_residual, rows,
                               config_.seq_len, d);
  }
}

const float* Transformer::logits(int slot) const { return slots_.at(slot).logits; }

double Transformer::flops_per_token() const {
  double matmul_params = 0.0;
  for (const ParameterInfo& info : parameters_.infos()) {
    const bool matrix = info.global_shape.size() == 2;
    const bool lookup_only = info.name == "embed/positions/weight" ||
                             (info.name == "embed/tokens/weight" && !config_.tied_embeddings());
    if (matrix && !lookup_only) matmul_params += static_cast<double>(info.count);
  }
  return 6.0 * matmul_params +
         12.0 * config_.n_layers * config_.d_model * static_cast<double>(config_.seq_len);
}

}  // namespace tessera
