// The decoder-only transformer, with an explicit forward and backward per layer (no autograd).
//
// Two families share one code path (see ModelConfig):
//   gpt2:   learned positions, LayerNorm with bias, biases everywhere, GELU(tanh) MLP,
//           output head tied to the token embedding.
//   openlm: rotary positions, LayerNorm (or RMSNorm), no linear biases, SwiGLU MLP,
//           untied output head, fp32 logits.
// Both are pre-norm: x + attn(norm(x)), then x + mlp(norm(x)), then a final norm and the head.
//
// A Transformer object computes one part of the model (ModelPartition): the blocks of one
// pipeline stage (with the embedding on the first stage, final norm and head on the last), and
// of each of those, this rank's tensor-parallel share (Megatron-LM's split):
//   q, k, v, MLP fc / gate / up   column-parallel: output features (heads) split, input whole;
//   attention out, MLP proj/down  row-parallel: input features split, outputs summed over tp;
//   token embedding and head      vocab-parallel: rows of the [vocab, d] table split.
// The paired collectives (Megatron's f and g) are:
//   f = identity forward / all-reduce backward: the input of a column-parallel layer is
//       replicated, so its gradient, a sum of per-shard contributions X_grad = sum_i dY_i W_i,
//       is all-reduced before the norm that produced it;
//   g = all-reduce forward / identity backward: a row-parallel layer's output Y = sum_i X_i W_i^T
//       is all-reduced; its gradient, replicated, flows to every shard unchanged.
//
// Sequence parallelism (Megatron-LM, Korthikanti et al. 2022; ModelPartition::sequence_parallel)
// stops replicating the norm regions: the residual stream, the norms and the activations passed
// between pipeline stages hold only this rank's block of rows R_t = [t * rows/tp, (t+1) *
// rows/tp) of the [batch * seq] rows (tp must divide rows). f and g become
//   f = all-gather forward / reduce-scatter backward: X = concat_t X[R_t] feeds the column-
//       parallel GEMM; its gradient block is X_grad[R_t] = sum_i (dY_i W_i)[R_t];
//   g = reduce-scatter forward / all-gather backward: Y[R_t] = sum_i (X_i W_i^T)[R_t]; the
//       row-parallel GEMM's backward needs dY on all rows, concat_t dY[R_t].
// Both forms are written with two helpers: gather_rows (f forward, g backward: the identity
// without sequence parallelism) and reduce_rows (f backward, g forward: all-reduce without it).
// The vocab-parallel embedding is a row-parallel exit (its partial lookups are reduced by g) and
// the head a column-parallel entry (f after the final norm). A norm's gain and bias then see only
// R_t: their gradients are partial sums, all-reduced over tp inside norm_backward.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "model/activations.hpp"
#include "model/parameters.hpp"
#include "parallel/communicator.hpp"
#include "parallel/layout/stage_balance.hpp"  // model_flops_per_token

namespace tessera {

/// Called during backward with the flat offset from which this rank's parameter gradients will
/// not change again in this backward pass (they fill the buffer from its end towards its
/// start), so that their data-parallel reduction can start while backward goes on.
using GradientsReadyHook = std::function<void(std::size_t ready_from)>;

/// Which part of the model this rank computes.
struct ModelPartition {
  int first_layer = 0;
  int end_layer = -1;  ///< one past this stage's last block; -1 means n_layers
  int tp_rank = 0;
  int tp_size = 1;
  Communicator* tp = nullptr;  ///< tensor-parallel group; may be null when tp_size == 1
  /// Pad the flat parameter buffers to a multiple of this (the dp size under ZeRO-1).
  std::size_t buffer_multiple = 1;
  /// Hold the norm regions as row blocks (see above); has effect only with tp_size > 1.
  bool sequence_parallel = false;
  /// What backward recomputes instead of keeping from forward (train.recompute). Recomputation
  /// runs the same kernels on the same inputs, so results are bitwise those of Recompute::none.
  /// selective: the attention probabilities of every block share one buffer, refilled from the
  /// block's saved qkv before its attention backward. full: each block keeps only its input;
  /// its other activations share one set of buffers, refilled by re-running the block's forward
  /// (collectives included) before its backward.
  Recompute recompute = Recompute::none;
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, Backend& backend, ModelPartition partition = {});
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelPartition& partition() const { return partition_; }
  bool first_stage() const { return partition_.first_layer == 0; }
  bool last_stage() const { return partition_.end_layer == config_.n_layers; }
  ParameterStore& parameters() { return parameters_; }
  const ParameterStore& parameters() const { return parameters_; }

  /// Rows of the residual stream held here: batch * seq, or this rank's block of them with
  /// sequence parallelism.
  int local_rows(int batch) const;
  /// Floats of one stage input or output activation (and of its gradient): local_rows * d.
  std::size_t stage_activation_count(int batch) const;
  /// Where a later stage receives its input activation [local_rows, d_model] for `slot`
  /// before calling forward (the first stage embeds the tokens there itself).
  float* stage_input(int slot, int batch);
  /// This stage's output activation after forward(slot) (not on the last stage).
  const float* stage_output(int slot) const;

  /// Forward pass of one microbatch kept in activation slot `slot` (one slot per microbatch in
  /// flight). tokens and targets are [batch, seq] on the host (tokens used on the first stage,
  /// targets on the last). With grad_scale > 0 the gradient of grad_scale * sum(losses) wrt the
  /// logits is kept for `backward(slot)`. Returns the sum over tokens of the per-token loss on
  /// the last stage, 0 elsewhere.
  double forward(int slot, const int32_t* tokens, const int32_t* targets, int batch,
                 float grad_scale);
  /// Where a stage other than the last receives the gradient wrt its output before backward.
  float* output_gradient(int batch);
  /// Adds this microbatch's parameter gradients into parameters().gradients(). On a stage other
  /// than the first, leaves the gradient wrt the stage input in `input_gradient()`. `ready`, if
  /// given, is told after each layer which gradients are complete.
  void backward(int slot, const GradientsReadyHook* ready = nullptr);
  const float* input_gradient() const;

  /// Logits [batch * seq, vocab / tp] of the last forward in `slot`; valid only when that
  /// forward ran with grad_scale 0 (otherwise the buffer holds their gradient).
  const float* logits(int slot) const;
  /// Per-token losses [batch * seq] of the last forward on the last stage, on the host: the
  /// cross-entropy of each target, plus the z-loss term when model.z_loss > 0. Every
  /// tensor-parallel rank holds them.
  std::span<const float> token_losses(int batch) const;

  // ---- incremental decoding (generation) -----------------------------------------------------
  // One sequence at a time: each block keeps the keys and values of every position so far (a KV
  // cache of model.seq_len positions, rows packed as qkv is), so a new token costs one row
  // through the model. Without sequence parallelism (a decoding step may be a single row).

  /// Starts a new sequence: decode() then continues from position 0.
  void start_sequence();
  /// Positions decoded so far in this sequence.
  int sequence_length() const;
  /// Where a later stage receives a decoding step's input [count, d_model] before decode().
  float* decode_input();
  /// Runs `count` new positions [sequence_length(), + count) through this stage: the first
  /// stage embeds `tokens` (host, [count]), the others read decode_input(); their keys and
  /// values join the cache. Afterwards the last stage holds the logits of the last new position
  /// in decode_logits(), the others their output in decode_output().
  void decode(const int32_t* tokens, int count);
  /// [count, d_model] of the last decode() (not on the last stage).
  const float* decode_output() const;
  /// The full vocabulary's logits of the last decoded position, on the host (gathered over tp).
  std::span<const float> decode_logits() const;

  double flops_per_token() const { return model_flops_per_token(config_); }
  /// Seconds spent in tensor-parallel collectives since the last call (then reset).
  double take_tp_seconds();
  /// Bytes of the activations held for backward: every slot's, and the buffers that
  /// recomputation refills (the backward scratch is not included).
  std::size_t activation_bytes() const;

 private:
  struct LayerParameters;  // indices of one block's parameters
  /// The activations that recomputation refills, shared by all blocks and slots of one
  /// microbatch size, and a block output that a recomputed forward writes and nobody reads.
  struct RecomputeBuffers {
    BufferPool pool;
    BlockActivations block;
    float* discarded_output = nullptr;
  };
  void register_parameters();
  MicrobatchActivations& slot_activations(int slot, int batch);
  RecomputeBuffers& recompute_buffers(int batch);
  /// One block's activation buffers for `batch` sequences, except `input`.
  BlockActivations take_block_buffers(BufferPool& pool, int batch, bool with_attention_state) const;
  /// Floats of one block's attention state, as the backend sizes it.
  std::size_t attention_state_count(int batch) const;
  void ensure_scratch(int batch);
  void embed(MicrobatchActivations& acts, float* out);
  void embed_backward(MicrobatchActivations& acts, const float* d_out);
  void head_forward(MicrobatchActivations& acts, float grad_scale);
  void loss_forward(MicrobatchActivations& acts, float grad_scale);
  void head_backward(MicrobatchActivations& acts, float* d_output);
  /// Reads the block's input from acts.blocks[layer].input, writes its output to `out`.
  void block_forward(int layer, MicrobatchActivations& acts, float* out);
  /// The block on `rows` rows (`local` of them in the norm regions) held in `a`: a.input in,
  /// `out` out (which may be a.input itself); `attend` turns a.qkv into a.attn_out (training:
  /// rotary and causal attention over the microbatch; decoding: over the KV cache).
  void block_rows_forward(int layer, BlockActivations& a, int rows, int local,
                          const std::function<void(BlockActivations&)>& attend, float* out);
  void block_backward(int layer, MicrobatchActivations& acts, float* d_residual);
  void norm_forward(float* out, float* mean, float* rstd, const float* in, std::size_t gain,
                    int rows);
  void norm_backward(float* d_in, const float* d_out, const float* in, std::size_t gain,
                     const float* mean, const float* rstd, int rows);
  /// Sums `data` over the tensor-parallel group (no-op without tensor parallelism).
  void tp_all_reduce(float* data, std::size_t count);
  bool sequence_parallel() const { return partition_.sequence_parallel && partition_.tp_size > 1; }
  /// This rank's block of a [rows, d] buffer: `full` itself without sequence parallelism.
  float* row_block(float* full, int rows) const;
  /// Where a row-parallel layer writes its partial output before reduce_rows into `out`.
  float* row_parallel_output(float* out);
  /// f forward / g backward: [local rows, d] -> [rows, d]. Without sequence parallelism returns
  /// `local` (already all rows); with it all-gathers the blocks into `full` and returns it.
  const float* gather_rows(const float* local, float* full, int rows);
  /// f backward / g forward: sums the per-shard partials [rows, d] over tp. Without sequence
  /// parallelism all-reduces `partial` in place and returns it; with it reduce-scatters this
  /// rank's block into `local` and returns that.
  float* reduce_rows(float* partial, float* local, int rows);
  BlockActivations& block(MicrobatchActivations& acts, int layer);
  const LayerParameters& layer_parameters(int layer) const;
  /// Flat offset of the first parameter of `layer` (of the final norm for n_layers).
  std::size_t first_offset(int layer) const;
  float* bias_or_null(std::size_t index);
  float* bias_gradient_or_null(std::size_t index);
  int local_heads() const { return config_.n_heads / partition_.tp_size; }
  int local_width() const { return config_.d_model / partition_.tp_size; }
  int local_ffn() const { return config_.ffn_hidden / partition_.tp_size; }
  int local_vocab() const { return config_.vocab_size / partition_.tp_size; }
  int vocab_begin() const { return local_vocab() * partition_.tp_rank; }

  ModelConfig config_;
  Backend& backend_;
  ModelPartition partition_;
  ParameterStore parameters_;
  std::vector<LayerParameters> layers_;  // this stage's blocks, first_layer first
  std::size_t token_embedding_ = 0, position_embedding_ = 0, final_norm_ = 0, head_ = 0;
  std::map<int, MicrobatchActivations> slots_;
  std::vector<BufferPool> pools_;              // keeps every slot's buffers alive
  std::map<int, RecomputeBuffers> recompute_;  // by microbatch size; empty without recompute
  int scratch_rows_ = 0;
  std::unique_ptr<BufferPool> scratch_pool_;
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
  struct DecodeState;  // transformer_decode.cpp
  DecodeState& decode_state();
  std::unique_ptr<DecodeState> decode_;
  std::vector<float> host_losses_;  // per-token losses copied back from the backend
  double tp_seconds_ = 0.0;
};

}  // namespace tessera
