#include "model/transformer.hpp"

#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "core/error.hpp"
#include "model/transformer_internals.hpp"

namespace tessera {
namespace {

std::string layer_name(int layer, const std::string& rest) {
  return "layers/" + std::to_string(layer) + "/" + rest;
}

}  // namespace

Transformer::Transformer(const ModelConfig& config, Backend& backend)
    : config_(config), backend_(backend), parameters_(backend) {
  register_parameters();
  parameters_.allocate();
}

Transformer::~Transformer() = default;

void Transformer::register_parameters() {
  const int64_t d = config_.d_model, ffn = config_.ffn_hidden, vocab = config_.vocab_size;
  const float std = config_.init_std;
  // Residual output projections are scaled down so the residual stream's variance does not grow
  // with depth (GPT-2 paper, section 2.3).
  const float residual_std = std / std::sqrt(2.0f * static_cast<float>(config_.n_layers));
  auto& p = parameters_;

  token_embedding_ = p.add("embed/tokens/weight", {vocab, d}, InitKind::normal, std);
  if (config_.learned_positions()) {
    position_embedding_ =
        p.add("embed/positions/weight", {config_.seq_len, d}, InitKind::normal, std);
  }
  // A LayerNorm's bias is registered right after its gain: norm_forward finds it at gain + 1.
  auto add_norm = [&](const std::string& name) {
    const std::size_t gain = p.add(name + "/gain", {d}, InitKind::ones, 0.0f);
    if (config_.norm == NormKind::layernorm) {
      p.add(name + "/bias", {d}, InitKind::zeros, 0.0f);
    }
    return gain;
  };
  for (int layer = 0; layer < config_.n_layers; ++layer) {
    LayerParameters lp;
    lp.attn_norm_gain = add_norm(layer_name(layer, "attn_norm"));
    // q, k, v registered back to back: their blocks form one [3d, d] matrix for one GEMM.
    lp.qkv_weight = p.add(layer_name(layer, "attn/q/weight"), {d, d}, InitKind::normal, std);
    p.add(layer_name(layer, "attn/k/weight"), {d, d}, InitKind::normal, std);
    p.add(layer_name(layer, "attn/v/weight"), {d, d}, InitKind::normal, std);
    if (config_.has_bias()) {
      lp.qkv_bias = p.add(layer_name(layer, "attn/q/bias"), {d}, InitKind::zeros, 0);
      p.add(layer_name(layer, "attn/k/bias"), {d}, InitKind::zeros, 0);
      p.add(layer_name(layer, "attn/v/bias"), {d}, InitKind::zeros, 0);
    }
    lp.out_weight =
        p.add(layer_name(layer, "attn/out/weight"), {d, d}, InitKind::normal, residual_std);
    if (config_.has_bias()) {
      lp.out_bias = p.add(layer_name(layer, "attn/out/bias"), {d}, InitKind::zeros, 0);
    }
    lp.mlp_norm_gain = add_norm(layer_name(layer, "mlp_norm"));
    if (config_.swiglu()) {
      lp.fc_weight =
          p.add(layer_name(layer, "mlp/gate/weight"), {ffn, d}, InitKind::normal, std);
      lp.up_weight = p.add(layer_name(layer, "mlp/up/weight"), {ffn, d}, InitKind::normal, std);
      lp.proj_weight = p.add(layer_name(layer, "mlp/down/weight"), {d, ffn}, InitKind::normal,
                             residual_std);
    } else {
      lp.fc_weight = p.add(layer_name(layer, "mlp/fc/weight"), {ffn, d}, InitKind::normal, std);
      lp.fc_bias = p.add(layer_name(layer, "mlp/fc/bias"), {ffn}, InitKind::zeros, 0);
      lp.proj_weight = p.add(layer_name(layer, "mlp/proj/weight"), {d, ffn}, InitKind::normal,
                             residual_std);
      lp.proj_bias = p.add(layer_name(layer, "mlp/proj/bias"), {d}, InitKind::zeros, 0);
    }
    layers_.push_back(lp);
  }
  final_norm_ = add_norm("final_norm");
  head_ = config_.tied_embeddings()
              ? token_embedding_
              : p.add("head/weight", {vocab, d}, InitKind::normal, std);
}

float* Transformer::bias_or_null(std::size_t index) {
  return index == kAbsent ? nullptr : parameters_.value(index);
}

float* Transformer::bias_gradient_or_null(std::size_t index) {
  return index == kAbsent ? nullptr : parameters_.gradient(index);
}

MicrobatchActivations& Transformer::slot_activations(int slot, int batch) {
  auto found = slots_.find(slot);
  if (found != slots_.end() && found->second.batch == batch) return found->second;
  // First use of this slot (or a new microbatch size): allocate once, reuse afterwards.
  const std::size_t rows = static_cast<std::size_t>(batch) * static_cast<std::size_t>(config_.seq_len);
  const std::size_t d = config_.d_model, ffn = config_.ffn_hidden, vocab = config_.vocab_size;
  const std::size_t probs = static_cast<std::size_t>(batch) * config_.n_heads * config_.seq_len *
                            static_cast<std::size_t>(config_.seq_len);
  BufferPool pool(backend_);
  MicrobatchActivations acts;
  acts.batch = batch;
  acts.tokens = pool.take_tokens(rows);
  acts.targets = pool.take_tokens(rows);
  for (int layer = 0; layer < config_.n_layers; ++layer) {
    BlockActivations b;
    b.input = pool.take(rows * d);
    b.attn_norm_out = pool.take(rows * d);
    b.attn_norm_mean = pool.take(rows);
    b.attn_norm_rstd = pool.take(rows);
    b.qkv = pool.take(rows * 3 * d);
    b.probs = pool.take(probs);
    b.attn_out = pool.take(rows * d);
    b.mid = pool.take(rows * d);
    b.mlp_norm_out = pool.take(rows * d);
    b.mlp_norm_mean = pool.take(rows);
    b.mlp_norm_rstd = pool.take(rows);
    b.mlp_hidden = pool.take(rows * ffn);
    if (config_.swiglu()) b.mlp_up = pool.take(rows * ffn);
    b.mlp_act = pool.take(rows * ffn);
    acts.blocks.push_back(b);
  }
  acts.output = pool.take(rows * d);
  acts.final_norm_out = pool.take(rows * d);
  acts.final_norm_mean = pool.take(rows);
  acts.final_norm_rstd = pool.take(rows);
  acts.logits = pool.take(rows * vocab);
  acts.losses = pool.take(rows);
  pools_.push_back(std::move(pool));
  slots_[slot] = std::move(acts);
  return slots_[slot];
}

void Transformer::ensure_scratch(int rows) {
  if (rows <= scratch_rows_) return;
  const std::size_t r = rows, d = config_.d_model, ffn = config_.ffn_hidden;
  scratch_pool_ = std::make_unique<BufferPool>(backend_);
  scratch_ = std::make_unique<Scratch>();
  scratch_->d_residual = scratch_pool_->take(r * d);
  scratch_->d_branch = scratch_pool_->take(r * d);
  scratch_->d_norm = scratch_pool_->take(r * d);
  scratch_->d_norm_up = scratch_pool_->take(r * d);
  scratch_->d_qkv = scratch_pool_->take(r * 3 * d);
  scratch_->d_attn = scratch_pool_->take(r * d);
  scratch_->d_hidden = scratch_pool_->take(r * ffn);
  scratch_->d_up = scratch_pool_->take(r * ffn);
  scratch_->d_act = scratch_pool_->take(r * ffn);
  scratch_rows_ = rows;
}

}  // namespace tessera
