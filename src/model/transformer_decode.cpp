// Incremental decoding: a sequence extended a few rows at a time, each block attending over the
// keys and values it cached for the earlier positions. The block's computation is the training
// forward's (block_rows_forward); only attention differs: rotary at the rows' own positions,
// then the fused causal kernel for a sequence's first rows (the prompt) and the cached-attention
// kernel for the rows after them.
#include "core/error.hpp"
#include "model/transformer.hpp"
#include "model/transformer_internals.hpp"

namespace tessera {

Transformer::DecodeState& Transformer::decode_state() {
  if (decode_) return *decode_;
  TESSERA_CHECK(!sequence_parallel(), "decoding runs without sequence parallelism");
  const std::size_t seq = static_cast<std::size_t>(config_.seq_len);
  const std::size_t d = config_.d_model, width = local_width();
  decode_ = std::make_unique<DecodeState>(backend_);
  DecodeState& s = *decode_;
  // One sequence of seq_len rows holds any step, the prompt's included.
  s.block = take_block_buffers(s.pool, 1, /*with_attention_state=*/true);
  s.hidden = s.pool.take(seq * d);
  s.block.input = s.hidden;
  for (int layer = partition_.first_layer; layer < partition_.end_layer; ++layer) {
    s.caches.push_back(s.pool.take(seq * 3 * width));
  }
  if (first_stage()) s.tokens = s.pool.take_tokens(seq);
  if (last_stage()) {
    s.final_norm_out = s.pool.take(d);
    s.final_norm_mean = s.pool.take(1);
    s.final_norm_rstd = s.pool.take(1);
    s.logits = s.pool.take(static_cast<std::size_t>(local_vocab()));
    if (partition_.tp_size > 1)
      s.all_logits = s.pool.take(static_cast<std::size_t>(config_.vocab_size));
    s.host_logits.resize(static_cast<std::size_t>(config_.vocab_size));
  }
  return s;
}

void Transformer::start_sequence() { decode_state().length = 0; }

int Transformer::sequence_length() const { return decode_ ? decode_->length : 0; }

float* Transformer::decode_input() { return decode_state().hidden; }

const float* Transformer::decode_output() const {
  TESSERA_CHECK(decode_ != nullptr, "decode_output before decode");
  return decode_->hidden;
}

std::span<const float> Transformer::decode_logits() const {
  TESSERA_CHECK(decode_ != nullptr && last_stage(), "decode_logits on the last stage after decode");
  return decode_->host_logits;
}

void Transformer::decode(const int32_t* tokens, int count) {
  DecodeState& s = decode_state();
  const int first = s.length;
  TESSERA_CHECK(count >= 1 && first + count <= config_.seq_len,
                "decoding positions " + std::to_string(first) + " + " + std::to_string(count) +
                    " past model.seq_len");
  const std::size_t d = config_.d_model, rows = static_cast<std::size_t>(count);
  if (first_stage()) {
    // As embed() does: this rank's vocabulary shard, positions added by one rank, summed over tp.
    backend_.copy_tokens_from_host(s.tokens, tokens, rows);
    backend_.embedding_forward(s.hidden, s.tokens, parameters_.value(token_embedding_), count,
                               config_.d_model, vocab_begin(), local_vocab());
    if (config_.learned_positions() && partition_.tp_rank == 0) {
      // Rows r of the step are positions first + r: the table from row `first` on.
      backend_.position_forward(s.hidden, parameters_.value(position_embedding_) + first * d, count,
                                count, config_.d_model);
    }
    tp_all_reduce(s.hidden, rows * d);
  }
  const int heads = local_heads(), head_dim = config_.head_dim();
  const std::size_t row_floats = 3 * static_cast<std::size_t>(local_width());
  for (int layer = partition_.first_layer; layer < partition_.end_layer; ++layer) {
    float* cache = s.caches[static_cast<std::size_t>(layer - partition_.first_layer)];
    const auto attend = [&](BlockActivations& a) {
      const AttentionShape shape{1, count, heads, head_dim, first};
      if (config_.rotary()) backend_.rotary_forward(a.qkv, shape, config_.rotary_base);
      backend_.copy_device(cache + static_cast<std::size_t>(first) * row_floats, a.qkv,
                           rows * row_floats);
      if (first == 0) {
        backend_.attention_forward(a.attn_out, a.attention_state, a.qkv, shape);
      } else {
        backend_.cached_attention_forward(a.attn_out, cache, first, count, heads, head_dim);
      }
    };
    block_rows_forward(layer, s.block, count, count, attend, s.hidden);
  }
  s.length += count;
  if (!last_stage()) return;
  // Only the last position's logits are wanted: the final norm and the head on one row.
  norm_forward(s.final_norm_out, s.final_norm_mean, s.final_norm_rstd, s.hidden + (rows - 1) * d,
               final_norm_, 1);
  backend_.linear_forward(s.logits, s.final_norm_out, parameters_.value(head_), nullptr, 1,
                          config_.d_model, local_vocab());
  const float* logits = s.logits;
  if (partition_.tp_size > 1) {  // shards in rank order are the vocabulary in order
    partition_.tp->all_gather(s.logits, s.all_logits, static_cast<std::size_t>(local_vocab()));
    logits = s.all_logits;
  }
  backend_.copy_to_host(s.host_logits.data(), logits, s.host_logits.size());
}

}  // namespace tessera
