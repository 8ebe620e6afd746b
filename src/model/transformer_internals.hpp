// Private to src/model: the parameter indices of one block, the backward scratch buffers and
// the state of incremental decoding.
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

#include "model/transformer.hpp"

namespace tessera {

inline constexpr std::size_t kAbsent = std::numeric_limits<std::size_t>::max();

/// Indices into the ParameterStore of one block's tensors (kAbsent where the family has none).
struct Transformer::LayerParameters {
  std::size_t attn_norm_gain = kAbsent;                  // a LayerNorm's bias follows its gain
  std::size_t qkv_weight = kAbsent, qkv_bias = kAbsent;  // q; k and v follow contiguously
  std::size_t out_weight = kAbsent, out_bias = kAbsent;
  std::size_t mlp_norm_gain = kAbsent;
  std::size_t fc_weight = kAbsent, fc_bias = kAbsent;  // gpt2 fc, or openlm gate
  std::size_t up_weight = kAbsent;                     // openlm only
  std::size_t proj_weight = kAbsent, proj_bias = kAbsent;
};

/// Gradient buffers shared by all layers during backward, sized for the largest microbatch.
/// `local` is the rows held in the norm regions: rows / tp with sequence parallelism.
struct Transformer::Scratch {
  float* d_residual = nullptr;  // [local, d] gradient flowing down the residual stream
  float* d_branch = nullptr;    // [local, d]
  float* d_norm = nullptr;      // [rows, d]
  float* d_norm_up = nullptr;   // [rows, d] second contribution (SwiGLU's up projection)
  float* d_qkv = nullptr;       // [rows, 3d/tp]
  float* d_attn = nullptr;      // [rows, d/tp]
  float* d_hidden = nullptr;    // [rows, ffn/tp]
  float* d_up = nullptr;        // [rows, ffn/tp]
  float* d_act = nullptr;       // [rows, ffn/tp]
  // Per-row statistics of the vocab-parallel cross-entropy [rows].
  float* row_max = nullptr;
  float* row_sum = nullptr;
  float* global_max = nullptr;
  float* target_logit = nullptr;
  // Sequence parallelism only (null otherwise):
  float* rows_full = nullptr;       // [rows, d] row-parallel partials (forward), gathered
                                    // output gradients (backward)
  float* d_local = nullptr;         // [local, d] reduce-scattered input gradient of a norm
  float* norm_gradients = nullptr;  // [2d] a norm's partial gain (and bias) gradients
};

/// Incremental decoding of one sequence (transformer_decode.cpp): buffers for up to seq_len new
/// rows, shared by every block (nothing is kept for a backward pass), and each block's KV cache.
struct Transformer::DecodeState {
  explicit DecodeState(Backend& backend) : pool(backend) {}
  BufferPool pool;
  BlockActivations block;      // its `input` is `hidden`
  float* hidden = nullptr;     // [seq_len, d]: the stage's input, updated in place to its output
  std::vector<float*> caches;  // per block of this stage: [seq_len, 3 * local width]
  int32_t* tokens = nullptr;   // [seq_len] (first stage)
  float *final_norm_out = nullptr, *final_norm_mean = nullptr, *final_norm_rstd = nullptr;
  float* logits = nullptr;      // [local vocab] of the last new position (last stage)
  float* all_logits = nullptr;  // [vocab], gathered over tp (tp > 1)
  std::vector<float> host_logits;
  int length = 0;  // positions decoded in this sequence
};

}  // namespace tessera
