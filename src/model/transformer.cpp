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

Transformer::Transformer(const ModelConfig& config, Backend& backend, ModelPartition partition)
    : config_(config), backend_(backend), partition_(partition), parameters_(backend) {
  if (partition_.end_layer < 0) partition_.end_layer = config_.n_layers;
  TESSERA_CHECK(0 <= partition_.first_layer && partition_.first_layer < partition_.end_layer &&
                    partition_.end_layer <= config_.n_layers,
                "stage layers [" + std::to_string(partition_.first_layer) + ", " +
                    std::to_string(partition_.end_layer) + ")");
  TESSERA_CHECK(config_.ffn_hidden > 0, "model.ffn_hidden is 0: load_config derives it");
  TESSERA_CHECK(partition_.tp_size == 1 || partition_.tp != nullptr,
                "tensor parallelism without a communicator");
  register_parameters();
  parameters_.allocate(partition_.buffer_multiple);
}

Transformer::~Transformer() = default;

void Transformer::register_parameters() {
  const int64_t d = config_.d_model, ffn = config_.ffn_hidden, vocab = config_.vocab_size;
  const float std = config_.init_std;
  // Residual output projections are scaled down so the residual stream's variance does not grow
  // with depth (GPT-2 paper, section 2.3).
  const float residual_std = std / std::sqrt(2.0f * static_cast<float>(config_.n_layers));
  const TensorSplit rows{0, partition_.tp_rank, partition_.tp_size};     // column-parallel
  const TensorSplit columns{1, partition_.tp_rank, partition_.tp_size};  // row-parallel
  auto& p = parameters_;

  // The last stage holds the tied head as its own copy of the embedding (same name, same
  // initial values); the trainer sums the two copies' gradients.
  const bool tied_head_here = config_.tied_embeddings() && last_stage();
  if (first_stage() || tied_head_here) {
    token_embedding_ = p.add("embed/tokens/weight", {vocab, d}, InitKind::normal, std, rows);
  }
  if (first_stage() && config_.learned_positions()) {
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
  auto add_matrix = [&](int layer, const std::string& name, std::vector<int64_t> shape,
                        float init_std, TensorSplit split) {
    return p.add(layer_name(layer, name), std::move(shape), InitKind::normal, init_std, split);
  };
  auto add_bias = [&](int layer, const std::string& name, int64_t size, TensorSplit split) {
    return p.add(layer_name(layer, name), {size}, InitKind::zeros, 0.0f, split);
  };
  for (int layer = partition_.first_layer; layer < partition_.end_layer; ++layer) {
    LayerParameters lp;
    lp.attn_norm_gain = add_norm(layer_name(layer, "attn_norm"));
    // q, k, v registered back to back: their blocks form one [3d/tp, d] matrix for one GEMM.
    lp.qkv_weight = add_matrix(layer, "attn/q/weight", {d, d}, std, rows);
    add_matrix(layer, "attn/k/weight", {d, d}, std, rows);
    add_matrix(layer, "attn/v/weight", {d, d}, std, rows);
    if (config_.has_bias()) {
      lp.qkv_bias = add_bias(layer, "attn/q/bias", d, rows);
      add_bias(layer, "attn/k/bias", d, rows);
      add_bias(layer, "attn/v/bias", d, rows);
    }
    lp.out_weight = add_matrix(layer, "attn/out/weight", {d, d}, residual_std, columns);
    if (config_.has_bias()) lp.out_bias = add_bias(layer, "attn/out/bias", d, {});
    lp.mlp_norm_gain = add_norm(layer_name(layer, "mlp_norm"));
    if (config_.swiglu()) {
      lp.fc_weight = add_matrix(layer, "mlp/gate/weight", {ffn, d}, std, rows);
      lp.up_weight = add_matrix(layer, "mlp/up/weight", {ffn, d}, std, rows);
      lp.proj_weight = add_matrix(layer, "mlp/down/weight", {d, ffn}, residual_std, columns);
    } else {
      lp.fc_weight = add_matrix(layer, "mlp/fc/weight", {ffn, d}, std, rows);
      lp.fc_bias = add_bias(layer, "mlp/fc/bias", ffn, rows);
      lp.proj_weight = add_matrix(layer, "mlp/proj/weight", {d, ffn}, residual_std, columns);
      lp.proj_bias = add_bias(layer, "mlp/proj/bias", d, {});
    }
    layers_.push_back(lp);
  }
  if (last_stage()) {
    final_norm_ = add_norm("final_norm");
    head_ = config_.tied_embeddings()
                ? token_embedding_
                : p.add("head/weight", {vocab, d}, InitKind::normal, std, rows);
  }
}

float* Transformer::bias_or_null(std::size_t index) {
  return index == kAbsent ? nullptr : parameters_.value(index);
}

float* Transformer::bias_gradient_or_null(std::size_t index) {
  return index == kAbsent ? nullptr : parameters_.gradient(index);
}

int Transformer::local_rows(int batch) const {
  const int rows = batch * config_.seq_len;
  return sequence_parallel() ? rows / partition_.tp_size : rows;
}

std::size_t Transformer::stage_activation_count(int batch) const {
  return static_cast<std::size_t>(local_rows(batch)) * static_cast<std::size_t>(config_.d_model);
}

BlockActivations Transformer::take_block_buffers(BufferPool& pool, int batch,
                                                 bool with_attention_state) const {
  // Norm regions (residual stream, norm statistics) hold this rank's rows only; the gathered
  // norm outputs and everything between the column- and row-parallel GEMMs hold all rows.
  const std::size_t rows =
      static_cast<std::size_t>(batch) * static_cast<std::size_t>(config_.seq_len);
  const std::size_t local = static_cast<std::size_t>(local_rows(batch));
  const std::size_t d = config_.d_model, ffn = local_ffn();
  const std::size_t width = local_width();  // attention features held here: heads / tp
  BlockActivations b;
  b.attn_norm_out = pool.take(rows * d);
  b.attn_norm_mean = pool.take(local);
  b.attn_norm_rstd = pool.take(local);
  b.qkv = pool.take(rows * 3 * width);
  if (with_attention_state) b.attention_state = pool.take(attention_state_count(batch));
  b.attn_out = pool.take(rows * width);
  b.mid = pool.take(local * d);
  b.mlp_norm_out = pool.take(rows * d);
  b.mlp_norm_mean = pool.take(local);
  b.mlp_norm_rstd = pool.take(local);
  b.mlp_hidden = pool.take(rows * ffn);
  if (config_.swiglu()) b.mlp_up = pool.take(rows * ffn);
  b.mlp_act = pool.take(rows * ffn);
  return b;
}

std::size_t Transformer::attention_state_count(int batch) const {
  return backend_.attention_state_count(
      AttentionShape{batch, config_.seq_len, local_heads(), config_.head_dim()});
}

Transformer::RecomputeBuffers& Transformer::recompute_buffers(int batch) {
  auto found = recompute_.find(batch);
  if (found != recompute_.end()) return found->second;
  RecomputeBuffers buffers{BufferPool(backend_), {}, nullptr};
  if (partition_.recompute == Recompute::full) {
    buffers.block = take_block_buffers(buffers.pool, batch, /*with_attention_state=*/true);
    buffers.discarded_output = buffers.pool.take(stage_activation_count(batch));
  } else {
    buffers.block.attention_state = buffers.pool.take(attention_state_count(batch));
  }
  return recompute_.emplace(batch, std::move(buffers)).first->second;
}

MicrobatchActivations& Transformer::slot_activations(int slot, int batch) {
  auto found = slots_.find(slot);
  if (found != slots_.end() && found->second.batch == batch) return found->second;
  // First use of this slot (or a new microbatch size): allocate once, reuse afterwards.
  const std::size_t rows =
      static_cast<std::size_t>(batch) * static_cast<std::size_t>(config_.seq_len);
  TESSERA_CHECK(!sequence_parallel() || rows % static_cast<std::size_t>(partition_.tp_size) == 0,
                "sequence parallelism needs batch * seq divisible by tp");
  const std::size_t local = static_cast<std::size_t>(local_rows(batch));
  const std::size_t d = config_.d_model, vocab = local_vocab();
  const Recompute recompute = partition_.recompute;
  BufferPool pool(backend_);
  MicrobatchActivations acts;
  acts.batch = batch;
  acts.tokens = pool.take_tokens(rows);
  acts.targets = pool.take_tokens(rows);
  for (int layer = partition_.first_layer; layer < partition_.end_layer; ++layer) {
    BlockActivations b;
    if (recompute == Recompute::full) {
      b = recompute_buffers(batch).block;
    } else {
      b = take_block_buffers(pool, batch, /*with_attention_state=*/recompute == Recompute::none);
      if (recompute == Recompute::selective)
        b.attention_state = recompute_buffers(batch).block.attention_state;
    }
    b.input = pool.take(local * d);  // always kept: the stage input, or what full recompute re-runs
    acts.blocks.push_back(b);
  }
  acts.output = pool.take(local * d);
  if (last_stage()) {
    acts.final_norm_out = pool.take(rows * d);
    acts.final_norm_mean = pool.take(local);
    acts.final_norm_rstd = pool.take(local);
    acts.logits = pool.take(rows * vocab);
    acts.losses = pool.take(rows);
  }
  pools_.push_back(std::move(pool));
  slots_[slot] = std::move(acts);
  return slots_[slot];
}

std::size_t Transformer::activation_bytes() const {
  std::size_t bytes = 0;
  for (const BufferPool& pool : pools_) bytes += pool.bytes();
  for (const auto& [batch, buffers] : recompute_) bytes += buffers.pool.bytes();
  return bytes;
}

void Transformer::ensure_scratch(int batch) {
  const int rows = batch * config_.seq_len;
  if (rows <= scratch_rows_) return;
  const std::size_t r = rows, d = config_.d_model, ffn = local_ffn(), width = local_width();
  const std::size_t local = static_cast<std::size_t>(local_rows(batch));
  scratch_pool_ = std::make_unique<BufferPool>(backend_);
  scratch_ = std::make_unique<Scratch>();
  scratch_->d_residual = scratch_pool_->take(local * d);
  scratch_->d_branch = scratch_pool_->take(local * d);
  scratch_->d_norm = scratch_pool_->take(r * d);
  scratch_->d_norm_up = scratch_pool_->take(r * d);
  scratch_->d_qkv = scratch_pool_->take(r * 3 * width);
  scratch_->d_attn = scratch_pool_->take(r * width);
  scratch_->d_hidden = scratch_pool_->take(r * ffn);
  scratch_->d_up = scratch_pool_->take(r * ffn);
  scratch_->d_act = scratch_pool_->take(r * ffn);
  scratch_->row_max = scratch_pool_->take(r);
  scratch_->row_sum = scratch_pool_->take(r);
  scratch_->global_max = scratch_pool_->take(r);
  scratch_->target_logit = scratch_pool_->take(r);
  if (sequence_parallel()) {
    scratch_->rows_full = scratch_pool_->take(r * d);
    scratch_->d_local = scratch_pool_->take(local * d);
    scratch_->norm_gradients = scratch_pool_->take(2 * d);
  }
  scratch_rows_ = rows;
}

}  // namespace tessera
