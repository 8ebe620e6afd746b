// Forward and backward passes of the transformer, layer by layer.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.hpp"
#include "model/transformer.hpp"
#include "model/transformer_internals.hpp"

namespace tessera {

namespace {

/// Runs `collective` and adds its duration to `seconds`.
template <class Collective>
void timed(double& seconds, Collective&& collective) {
  const auto start = std::chrono::steady_clock::now();
  collective();
  seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void Transformer::tp_all_reduce(float* data, std::size_t count) {
  if (partition_.tp_size == 1) return;
  timed(tp_seconds_, [&] { partition_.tp->all_reduce_sum(data, count); });
}

float* Transformer::row_block(float* full, int rows) const {
  if (!sequence_parallel()) return full;
  const int local = rows / partition_.tp_size;
  return full + static_cast<std::size_t>(local) * config_.d_model * partition_.tp_rank;
}

float* Transformer::row_parallel_output(float* out) {
  return sequence_parallel() ? scratch_->rows_full : out;
}

const float* Transformer::gather_rows(const float* local, float* full, int rows) {
  if (!sequence_parallel()) return local;
  const std::size_t block = static_cast<std::size_t>(rows / partition_.tp_size) * config_.d_model;
  timed(tp_seconds_, [&] { partition_.tp->all_gather(local, full, block); });
  return full;
}

float* Transformer::reduce_rows(float* partial, float* local, int rows) {
  if (!sequence_parallel()) {
    tp_all_reduce(partial, static_cast<std::size_t>(rows) * config_.d_model);
    return partial;
  }
  const std::size_t block = static_cast<std::size_t>(rows / partition_.tp_size) * config_.d_model;
  timed(tp_seconds_, [&] { partition_.tp->reduce_scatter_sum(partial, local, block); });
  return local;
}

double Transformer::take_tp_seconds() {
  const double seconds = tp_seconds_;
  tp_seconds_ = 0.0;
  return seconds;
}

BlockActivations& Transformer::block(MicrobatchActivations& acts, int layer) {
  return acts.blocks[static_cast<std::size_t>(layer - partition_.first_layer)];
}

const Transformer::LayerParameters& Transformer::layer_parameters(int layer) const {
  return layers_[static_cast<std::size_t>(layer - partition_.first_layer)];
}

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
  const bool layernorm = config_.norm == NormKind::layernorm;
  const auto d = static_cast<std::size_t>(config_.d_model);
  // With sequence parallelism the rows are this rank's block: the gain (and bias) gradients of
  // this call are partial sums, summed over tp in a buffer of their own (the gradients already
  // accumulated from earlier microbatches must not be summed again) before they are added.
  const bool partial = sequence_parallel();
  float* d_gain = partial ? scratch_->norm_gradients : parameters_.gradient(gain);
  float* d_bias = !layernorm ? nullptr
                  : partial  ? scratch_->norm_gradients + d
                             : parameters_.gradient(gain + 1);
  if (partial) backend_.fill_zero(d_gain, 2 * d);
  if (layernorm) {
    backend_.layernorm_backward(d_in, d_gain, d_bias, d_out, in, parameters_.value(gain), mean,
                                rstd, rows, config_.d_model);
  } else {
    backend_.rmsnorm_backward(d_in, d_gain, d_out, in, parameters_.value(gain), rstd, rows,
                              config_.d_model);
  }
  if (!partial) return;
  tp_all_reduce(d_gain, layernorm ? 2 * d : d);
  backend_.accumulate(parameters_.gradient(gain), d_gain, d);
  if (layernorm) backend_.accumulate(parameters_.gradient(gain + 1), d_bias, d);
}

void Transformer::embed(MicrobatchActivations& acts, float* out) {
  const int rows = acts.batch * config_.seq_len;
  // Each rank looks up the tokens of its vocabulary shard (zeros for the others); the sum over
  // the tensor-parallel group (g) is the full lookup. The positions are added to all rows by
  // one rank before that sum, like a shared bias: every other term of a row's sum is either
  // zero or the token's row, so the sum is the same float as tokens + positions.
  float* lookup = row_parallel_output(out);
  backend_.embedding_forward(lookup, acts.tokens, parameters_.value(token_embedding_), rows,
                             config_.d_model, vocab_begin(), local_vocab());
  if (config_.learned_positions() && partition_.tp_rank == 0) {
    backend_.position_forward(lookup, parameters_.value(position_embedding_), rows, config_.seq_len,
                              config_.d_model);
  }
  reduce_rows(lookup, out, rows);
}

void Transformer::embed_backward(MicrobatchActivations& acts, const float* d_out) {
  const int rows = acts.batch * config_.seq_len;
  // The vocab shard's gradient needs every row's; so do the positions, whose gradient is then
  // complete (and the same) on every tensor-parallel rank.
  const float* d_all = gather_rows(d_out, scratch_->rows_full, rows);
  backend_.embedding_backward(parameters_.gradient(token_embedding_), acts.tokens, d_all, rows,
                              config_.d_model, vocab_begin(), local_vocab());
  if (config_.learned_positions()) {
    backend_.position_backward(parameters_.gradient(position_embedding_), d_all, rows,
                               config_.seq_len, config_.d_model);
  }
}

void Transformer::block_forward(int layer, MicrobatchActivations& acts, float* out) {
  const AttentionShape shape{acts.batch, config_.seq_len, local_heads(), config_.head_dim()};
  block_rows_forward(
      layer, block(acts, layer), acts.batch * config_.seq_len, local_rows(acts.batch),
      [&](BlockActivations& a) {
        if (config_.rotary()) backend_.rotary_forward(a.qkv, shape, config_.rotary_base);
        backend_.attention_forward(a.attn_out, a.attention_state, a.qkv, shape);
      },
      out);
}

void Transformer::block_rows_forward(int layer, BlockActivations& a, int rows, int local,
                                     const std::function<void(BlockActivations&)>& attend,
                                     float* out) {
  const LayerParameters& lp = layer_parameters(layer);
  const int d = config_.d_model, width = local_width(), ffn = local_ffn();
  const std::size_t residual = static_cast<std::size_t>(local) * d;  // norm-region floats
  // A replicated bias after a row-parallel layer is added by one rank only, before the sum.
  const bool adds_shared_bias = partition_.tp_rank == 0;

  float* attn_norm_block = row_block(a.attn_norm_out, rows);
  norm_forward(attn_norm_block, a.attn_norm_mean, a.attn_norm_rstd, a.input, lp.attn_norm_gain,
               local);
  gather_rows(attn_norm_block, a.attn_norm_out, rows);  // f
  backend_.linear_forward(a.qkv, a.attn_norm_out, parameters_.value(lp.qkv_weight),
                          bias_or_null(lp.qkv_bias), rows, d, 3 * width);
  attend(a);
  // The attention branch's projection lands in `mid`, then the residual is added in place.
  float* attn_partial = row_parallel_output(a.mid);
  backend_.linear_forward(attn_partial, a.attn_out, parameters_.value(lp.out_weight),
                          adds_shared_bias ? bias_or_null(lp.out_bias) : nullptr, rows, width, d);
  reduce_rows(attn_partial, a.mid, rows);  // g
  backend_.accumulate(a.mid, a.input, residual);

  float* mlp_norm_block = row_block(a.mlp_norm_out, rows);
  norm_forward(mlp_norm_block, a.mlp_norm_mean, a.mlp_norm_rstd, a.mid, lp.mlp_norm_gain, local);
  gather_rows(mlp_norm_block, a.mlp_norm_out, rows);  // f
  const std::size_t hidden = static_cast<std::size_t>(rows) * ffn;
  if (config_.swiglu()) {
    backend_.linear_forward(a.mlp_hidden, a.mlp_norm_out, parameters_.value(lp.fc_weight),
                            bias_or_null(lp.fc_bias), rows, d, ffn);
    backend_.linear_forward(a.mlp_up, a.mlp_norm_out, parameters_.value(lp.up_weight), nullptr,
                            rows, d, ffn);
    backend_.swiglu_forward(a.mlp_act, a.mlp_hidden, a.mlp_up, hidden);
  } else {
    backend_.linear_gelu_forward(a.mlp_hidden, a.mlp_act, a.mlp_norm_out,
                                 parameters_.value(lp.fc_weight), bias_or_null(lp.fc_bias), rows, d,
                                 ffn);
  }
  float* mlp_partial = row_parallel_output(out);
  backend_.linear_forward(mlp_partial, a.mlp_act, parameters_.value(lp.proj_weight),
                          adds_shared_bias ? bias_or_null(lp.proj_bias) : nullptr, rows, ffn, d);
  reduce_rows(mlp_partial, out, rows);  // g
  backend_.accumulate(out, a.mid, residual);
}

void Transformer::loss_forward(MicrobatchActivations& acts, float grad_scale) {
  const int rows = acts.batch * config_.seq_len;
  // When training, the logits buffer is overwritten by its own gradient (saves rows x vocab).
  float* d_logits = grad_scale > 0.0f ? acts.logits : nullptr;
  if (partition_.tp_size == 1) {
    backend_.softmax_cross_entropy(acts.losses, d_logits, acts.logits, acts.targets, rows,
                                   config_.vocab_size, config_.z_loss, grad_scale);
    return;
  }
  // Vocab-parallel cross-entropy (never gathers the logits): combine each shard's row maximum,
  // sum of exponentials and target logit over the tensor-parallel group.
  Scratch& s = *scratch_;
  const auto urows = static_cast<std::size_t>(rows);
  backend_.cross_entropy_shard_stats(s.row_max, s.row_sum, s.target_logit, acts.logits,
                                     acts.targets, rows, local_vocab(), vocab_begin());
  backend_.copy_device(s.global_max, s.row_max, urows);
  partition_.tp->all_reduce_max(s.global_max, urows);
  backend_.rebase_row_sums(s.row_sum, s.row_max, s.global_max, rows);
  partition_.tp->all_reduce_sum(s.row_sum, urows);
  partition_.tp->all_reduce_sum(s.target_logit, urows);
  backend_.cross_entropy_shard_finish(acts.losses, d_logits, acts.logits, acts.targets,
                                      s.global_max, s.row_sum, s.target_logit, rows, local_vocab(),
                                      vocab_begin(), config_.z_loss, grad_scale);
}

void Transformer::head_forward(MicrobatchActivations& acts, float grad_scale) {
  const int rows = acts.batch * config_.seq_len;
  float* norm_block = row_block(acts.final_norm_out, rows);
  norm_forward(norm_block, acts.final_norm_mean, acts.final_norm_rstd, acts.output, final_norm_,
               local_rows(acts.batch));
  gather_rows(norm_block, acts.final_norm_out, rows);  // f
  backend_.linear_forward(acts.logits, acts.final_norm_out, parameters_.value(head_), nullptr, rows,
                          config_.d_model, local_vocab());
  loss_forward(acts, grad_scale);
}

std::span<const float> Transformer::token_losses(int batch) const {
  const auto rows = static_cast<std::size_t>(batch) * static_cast<std::size_t>(config_.seq_len);
  TESSERA_CHECK(last_stage() && rows <= host_losses_.size(),
                "token losses exist on the last stage after a forward of that batch");
  return {host_losses_.data(), rows};
}

float* Transformer::stage_input(int slot, int batch) {
  MicrobatchActivations& acts = slot_activations(slot, batch);
  return acts.blocks.front().input;
}

const float* Transformer::stage_output(int slot) const { return slots_.at(slot).output; }

double Transformer::forward(int slot, const int32_t* tokens, const int32_t* targets, int batch,
                            float grad_scale) {
  MicrobatchActivations& acts = slot_activations(slot, batch);
  const int rows = batch * config_.seq_len;
  const auto urows = static_cast<std::size_t>(rows);
  ensure_scratch(batch);
  if (first_stage()) {
    backend_.copy_tokens_from_host(acts.tokens, tokens, urows);
    embed(acts, acts.blocks.front().input);
  }
  // Each block writes its output straight into the next block's saved input.
  for (int layer = partition_.first_layer; layer < partition_.end_layer; ++layer) {
    const bool last = layer + 1 == partition_.end_layer;
    block_forward(layer, acts, last ? acts.output : block(acts, layer + 1).input);
  }
  if (!last_stage()) return 0.0;
  backend_.copy_tokens_from_host(acts.targets, targets, urows);
  head_forward(acts, grad_scale);
  host_losses_.resize(std::max(host_losses_.size(), urows));  // grows only on a new batch size
  backend_.copy_to_host(host_losses_.data(), acts.losses, urows);
  double sum = 0.0;
  for (std::size_t row = 0; row < urows; ++row) sum += host_losses_[row];
  return sum;
}

void Transformer::block_backward(int layer, MicrobatchActivations& acts, float* d_residual) {
  const LayerParameters& lp = layer_parameters(layer);
  const BlockActivations& a = block(acts, layer);
  Scratch& s = *scratch_;
  const int rows = acts.batch * config_.seq_len, local = local_rows(acts.batch);
  const int d = config_.d_model, width = local_width(), ffn = local_ffn();
  const std::size_t full = static_cast<std::size_t>(rows) * d;
  const std::size_t residual = static_cast<std::size_t>(local) * d;  // norm-region floats
  const std::size_t hidden = static_cast<std::size_t>(rows) * ffn;
  const AttentionShape shape{acts.batch, config_.seq_len, local_heads(), config_.head_dim()};

  // MLP branch: d_residual is the gradient wrt the block output = wrt `mid` through the skip.
  // Gathered (g backward) it is the same on every tp rank, so every rank adds the same gradient
  // of the shared proj bias.
  const float* d_mlp_out = gather_rows(d_residual, s.rows_full, rows);
  backend_.linear_backward(s.d_act, parameters_.gradient(lp.proj_weight),
                           bias_gradient_or_null(lp.proj_bias), d_mlp_out, a.mlp_act,
                           parameters_.value(lp.proj_weight), rows, ffn, d);
  if (config_.swiglu()) {
    backend_.swiglu_backward(s.d_hidden, s.d_up, s.d_act, a.mlp_hidden, a.mlp_up, hidden);
    backend_.linear_backward(s.d_norm_up, parameters_.gradient(lp.up_weight), nullptr, s.d_up,
                             a.mlp_norm_out, parameters_.value(lp.up_weight), rows, d, ffn);
  } else {
    backend_.gelu_backward(s.d_hidden, s.d_act, a.mlp_hidden, hidden);
  }
  backend_.linear_backward(s.d_norm, parameters_.gradient(lp.fc_weight),
                           bias_gradient_or_null(lp.fc_bias), s.d_hidden, a.mlp_norm_out,
                           parameters_.value(lp.fc_weight), rows, d, ffn);
  if (config_.swiglu()) backend_.accumulate(s.d_norm, s.d_norm_up, full);
  const float* d_mlp_norm = reduce_rows(s.d_norm, s.d_local, rows);  // f backward
  norm_backward(s.d_branch, d_mlp_norm, a.mid, lp.mlp_norm_gain, a.mlp_norm_mean, a.mlp_norm_rstd,
                local);
  backend_.accumulate(d_residual, s.d_branch, residual);  // now the gradient wrt `mid`

  // Attention branch.
  const float* d_attn_out = gather_rows(d_residual, s.rows_full, rows);
  backend_.linear_backward(s.d_attn, parameters_.gradient(lp.out_weight),
                           bias_gradient_or_null(lp.out_bias), d_attn_out, a.attn_out,
                           parameters_.value(lp.out_weight), rows, width, d);
  if (partition_.recompute == Recompute::selective) {
    // The attention state's buffer is shared by all blocks: refill it from this block's qkv. The
    // attention output comes again with it (the same values) into a.attn_out.
    backend_.attention_forward(a.attn_out, a.attention_state, a.qkv, shape);
  }
  // a.attn_out is the attention core's output for a.qkv in every recompute mode: written by
  // attention_forward (here, or in block_forward, also when `full` re-ran it just before this
  // call) and only read since, by the output projection.
  backend_.attention_backward(s.d_qkv, s.d_attn, a.qkv, a.attn_out, a.attention_state, shape);
  if (config_.rotary()) backend_.rotary_backward(s.d_qkv, shape, config_.rotary_base);
  backend_.linear_backward(s.d_norm, parameters_.gradient(lp.qkv_weight),
                           bias_gradient_or_null(lp.qkv_bias), s.d_qkv, a.attn_norm_out,
                           parameters_.value(lp.qkv_weight), rows, d, 3 * width);
  const float* d_attn_norm = reduce_rows(s.d_norm, s.d_local, rows);  // f backward
  norm_backward(s.d_branch, d_attn_norm, a.input, lp.attn_norm_gain, a.attn_norm_mean,
                a.attn_norm_rstd, local);
  backend_.accumulate(d_residual, s.d_branch, residual);  // now the gradient wrt the block input
}

void Transformer::head_backward(MicrobatchActivations& acts, float* d_output) {
  const int rows = acts.batch * config_.seq_len;
  Scratch& s = *scratch_;
  // acts.logits holds grad_scale * d(loss)/d(logits) since the fused loss of forward().
  backend_.linear_backward(s.d_norm, parameters_.gradient(head_), nullptr, acts.logits,
                           acts.final_norm_out, parameters_.value(head_), rows, config_.d_model,
                           local_vocab());
  const float* d_norm = reduce_rows(s.d_norm, s.d_local, rows);  // f backward
  norm_backward(d_output, d_norm, acts.output, final_norm_, acts.final_norm_mean,
                acts.final_norm_rstd, local_rows(acts.batch));
}

float* Transformer::output_gradient(int batch) {
  ensure_scratch(batch);
  return scratch_->d_residual;
}

const float* Transformer::input_gradient() const { return scratch_->d_residual; }

std::size_t Transformer::first_offset(int layer) const {
  if (layer == config_.n_layers) return parameters_.info(final_norm_).offset;
  return parameters_.info(layer_parameters(layer).attn_norm_gain).offset;
}

void Transformer::backward(int slot, const GradientsReadyHook* ready) {
  auto found = slots_.find(slot);
  TESSERA_CHECK(found != slots_.end(),
                "backward of slot " + std::to_string(slot) + " without a forward");
  MicrobatchActivations& acts = found->second;
  ensure_scratch(acts.batch);
  float* d_residual = scratch_->d_residual;
  // Parameters are registered embedding, blocks, final norm, head: backward completes them from
  // the end of the buffer. A tied head is the embedding (offset 0), so it is reported last.
  auto report = [ready](std::size_t offset) {
    if (ready != nullptr) (*ready)(offset);
  };
  if (last_stage()) {
    head_backward(acts, d_residual);
    report(first_offset(config_.n_layers));
  }
  for (int layer = partition_.end_layer - 1; layer >= partition_.first_layer; --layer) {
    if (partition_.recompute == Recompute::full) {
      // Refill the block's shared activation buffers from its saved input. Its output is the
      // next block's input, which that block's backward no longer needs: write it elsewhere.
      block_forward(layer, acts, recompute_buffers(acts.batch).discarded_output);
    }
    block_backward(layer, acts, d_residual);
    report(first_offset(layer));
  }
  if (first_stage()) embed_backward(acts, d_residual);
  report(0);
}

const float* Transformer::logits(int slot) const { return slots_.at(slot).logits; }

}  // namespace tessera
