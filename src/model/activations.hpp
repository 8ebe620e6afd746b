// Activations saved by the forward pass of one microbatch for its backward pass.
//
// Each microbatch in flight has its own slot, so pipeline schedules can run several forwards
// before the matching backwards. Buffers are taken from the backend the first time a slot is
// used and reused afterwards: no allocation in the training step after the first one.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"

namespace tessera {

/// Owns backend buffers and releases them together.
class BufferPool {
 public:
  explicit BufferPool(Backend& backend) : backend_(&backend) {}
  ~BufferPool();
  BufferPool(BufferPool&& other) noexcept;
  BufferPool& operator=(BufferPool&&) = delete;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  float* take(std::size_t count);
  int32_t* take_tokens(std::size_t count);
  /// Bytes of every buffer taken so far.
  std::size_t bytes() const { return bytes_; }

 private:
  Backend* backend_;
  std::vector<float*> buffers_;
  std::vector<int32_t*> token_buffers_;
  std::size_t bytes_ = 0;
};

/// What one transformer block keeps from its forward pass. With sequence parallelism the
/// norm regions (input, norm statistics, mid, output) hold only this rank's rows / tp rows;
/// the norm outputs are gathered to all rows.
struct BlockActivations {
  float* input = nullptr;            ///< residual stream entering the block [rows, d_model]
  float* attn_norm_out = nullptr;    ///< [rows, d_model]
  float* attn_norm_mean = nullptr;   ///< [rows] (LayerNorm only)
  float* attn_norm_rstd = nullptr;   ///< [rows]
  float* qkv = nullptr;              ///< [rows, 3 * d_model], after rotary
  float* attention_state = nullptr;  ///< Backend::attention_state_count floats (probabilities
                                     ///< on the CPU, log-sum-exps on CUDA)
  float* attn_out = nullptr;         ///< [rows, d_model], before the output projection
  float* mid = nullptr;              ///< residual stream after attention [rows, d_model]
  float* mlp_norm_out = nullptr;
  float* mlp_norm_mean = nullptr;
  float* mlp_norm_rstd = nullptr;
  float* mlp_hidden = nullptr;  ///< fc output (gpt2) or gate (openlm) [rows, ffn_hidden]
  float* mlp_up = nullptr;      ///< up projection (openlm) [rows, ffn_hidden]
  float* mlp_act = nullptr;     ///< GELU or SwiGLU output [rows, ffn_hidden]
};

/// Everything one microbatch keeps between its forward and backward passes.
struct MicrobatchActivations {
  int batch = 0;               ///< sequences in the microbatch
  int32_t* tokens = nullptr;   ///< [rows]
  int32_t* targets = nullptr;  ///< [rows]
  std::vector<BlockActivations> blocks;
  float* output = nullptr;          ///< residual stream leaving the last block [rows, d_model]
  float* final_norm_out = nullptr;  ///< [rows, d_model]
  float* final_norm_mean = nullptr;
  float* final_norm_rstd = nullptr;
  float* logits = nullptr;  ///< [rows, vocab]; holds d_logits after the loss when training
  float* losses = nullptr;  ///< [rows]
};

}  // namespace tessera
