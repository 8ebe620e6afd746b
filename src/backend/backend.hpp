// The kernel seam: every numerical operation of a training step goes through this interface, so
// that CPU, CUDA and Kokkos implementations run the same model and the same conformance tests.
//
// Conventions, shared by every implementation:
//  * All tensors are dense, row-major fp32 buffers owned by the backend (`allocate`); integer
//    token ids are int32. Dimensions are passed explicitly: `rows` is batch*seq flattened.
//  * Gradients of parameters ACCUMULATE (+=), so microbatches add into the same buffers.
//    Gradients of activations (d_in, d_x, ...) OVERWRITE (=). The model adds residual branches
//    explicitly with `accumulate`.
//  * Weights of linear layers are [out_features, in_features] (PyTorch's nn.Linear layout).
//  * Buffers passed to one call never alias unless the comment says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

/// Shape of causal multi-head attention over a packed QKV activation.
/// qkv is [batch, seq, 3, n_heads, head_dim]: per token all query heads, then keys, then values.
struct AttentionShape {
  int batch = 0;
  int seq = 0;
  int n_heads = 0;  ///< heads held by this rank (all of them without tensor parallelism)
  int head_dim = 0;
  /// Position of each sequence's first row: rotary turns row r by position first_position +
  /// r % seq (decoding appends rows to a sequence already begun).
  int first_position = 0;
};

/// A part of a buffer: `count` elements from element `offset`.
struct BufferRange {
  std::size_t offset = 0;
  std::size_t count = 0;
};

/// The settings of one AdamW step.
struct AdamWStep {
  float lr = 0.0f, beta1 = 0.0f, beta2 = 0.0f, eps = 0.0f;
  int step = 0;                 ///< 1-based, for the bias corrections
  float gradient_scale = 1.0f;  ///< the gradients are used times this (clipping), not rescaled
};

/// AdamW's bias correction 1 / (1 - beta^step), computed in double: beta2^step for beta2 = 0.999
/// needs more digits than a float has. Throws InternalError unless step >= 1.
float adamw_inverse_correction(float beta, int step);

/// Parameters one AdamW step updates with one weight decay: `count` elements from `offset`, an
/// offset into param, grad, m and v alike.
struct AdamWSegment {
  std::size_t offset = 0;
  std::size_t count = 0;
  float weight_decay = 0.0f;
};

/// The memory a backend's buffers take, for reports and for checking a memory plan.
struct MemoryUse {
  /// Held now in buffers the backend allocated: `allocate`, `allocate_tokens`, its scratch and
  /// the library workspaces it allocates itself.
  std::size_t buffer_bytes = 0;
  /// The most buffer_bytes has been since the backend was made (the allocator's high-water mark).
  std::size_t peak_buffer_bytes = 0;
  /// Everything in use where the buffers live, as the system reports it: on a GPU the device's
  /// used memory (every process's, with the runtime's and libraries' own); on the host this
  /// process's peak resident set.
  std::size_t system_bytes = 0;
};

/// What a backend computes on, for hardware profiles and run records.
struct DeviceDescription {
  std::string kind;              ///< "cpu" or "gpu"
  std::string name;              ///< e.g. "NVIDIA H200", or the CPU's model name
  std::string driver;            ///< driver and runtime versions, or "" where there is none
  std::size_t memory_bytes = 0;  ///< the device's memory (the host's, for a CPU)
  int compute_units = 0;         ///< multiprocessors of a GPU; threads a CPU backend uses
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual DeviceDescription describe_device() const = 0;

  // ---- memory --------------------------------------------------------------------------------
  /// Zero-initialised buffer of `count` floats, aligned for vector loads; released by `release`.
  virtual float* allocate(std::size_t count) = 0;
  virtual void release(float* buffer) = 0;
  virtual int32_t* allocate_tokens(std::size_t count) = 0;
  virtual void release_tokens(int32_t* buffer) = 0;
  virtual void copy_from_host(float* device, const float* host, std::size_t count) = 0;
  virtual void copy_to_host(float* host, const float* device, std::size_t count) = 0;
  virtual void copy_tokens_from_host(int32_t* device, const int32_t* host, std::size_t count) = 0;
  virtual void fill_zero(float* buffer, std::size_t count) = 0;
  /// dst = src, both backend buffers. The default goes through the host; backends override it.
  virtual void copy_device(float* dst, const float* src, std::size_t count);
  virtual MemoryUse memory_use() const = 0;
  /// Whether the host reads and writes this backend's buffers in place (the CPU backend's,
  /// Kokkos' host spaces): checkpoints then write and read them without a host copy.
  virtual bool host_accessible() const { return false; }

  // ---- element-wise --------------------------------------------------------------------------
  /// out = a + b. `out` may alias `a` or `b`.
  virtual void add(float* out, const float* a, const float* b, std::size_t count) = 0;
  /// out += in.
  virtual void accumulate(float* out, const float* in, std::size_t count) = 0;
  /// x *= factor.
  virtual void scale(float* x, float factor, std::size_t count) = 0;
  /// Sum of x[i]^2, accumulated in double so the result does not depend on the count's size.
  virtual double sum_of_squares(const float* x, std::size_t count) = 0;
  /// Sum of x[i]^2 over every range of `base`, in double: one reduction over many tensors (a
  /// model's gradients, for their global norm), so that a device is waited for once, not once per
  /// tensor. Reproducible from run to run for the same ranges. The default adds sum_of_squares of
  /// each range, in order.
  virtual double sum_of_squares_of_ranges(const float* base,
                                          const std::vector<BufferRange>& ranges);

  // ---- embedding -----------------------------------------------------------------------------
  /// out[r, :] = table[tokens[r] - vocab_begin, :] when vocab_begin <= tokens[r] < vocab_begin +
  /// vocab_local, else zeros (so vocab-parallel shards sum to the full lookup).
  /// table is [vocab_local, dim].
  virtual void embedding_forward(float* out, const int32_t* tokens, const float* table, int rows,
                                 int dim, int vocab_begin, int vocab_local) = 0;
  /// d_table[tokens[r] - vocab_begin, :] += d_out[r, :] for the tokens this shard holds.
  virtual void embedding_backward(float* d_table, const int32_t* tokens, const float* d_out,
                                  int rows, int dim, int vocab_begin, int vocab_local) = 0;
  /// out[r, :] += table[r % seq, :] for learned absolute positions; table is [>= seq, dim].
  virtual void position_forward(float* out, const float* table, int rows, int seq, int dim) = 0;
  /// d_table[r % seq, :] += d_out[r, :].
  virtual void position_backward(float* d_table, const float* d_out, int rows, int seq,
                                 int dim) = 0;

  // ---- normalisation -------------------------------------------------------------------------
  /// out = (in - mean) * rstd * gain + bias per row of length dim; bias may be null.
  /// Saves mean[rows] and rstd[rows] for the backward pass.
  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                 const float* gain, const float* bias, int rows, int dim,
                                 float eps) = 0;
  /// d_in = gradient wrt in; d_gain += ..., d_bias += ... (d_bias may be null when bias is).
  virtual void layernorm_backward(float* d_in, float* d_gain, float* d_bias, const float* d_out,
                                  const float* in, const float* gain, const float* mean,
                                  const float* rstd, int rows, int dim) = 0;
  /// out = in * rstd * gain with rstd = 1 / sqrt(mean(in^2) + eps); saves rstd[rows].
  virtual void rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain,
                               int rows, int dim, float eps) = 0;
  virtual void rmsnorm_backward(float* d_in, float* d_gain, const float* d_out, const float* in,
                                const float* gain, const float* rstd, int rows, int dim) = 0;

  // ---- linear --------------------------------------------------------------------------------
  /// out[rows, out_features] = in[rows, in_features] @ weight^T + bias; bias may be null.
  virtual void linear_forward(float* out, const float* in, const float* weight, const float* bias,
                              int rows, int in_features, int out_features) = 0;
  /// d_in = d_out @ weight (skipped when d_in is null); d_weight += d_out^T @ in;
  /// d_bias += column sums of d_out (skipped when d_bias is null).
  virtual void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                               const float* in, const float* weight, int rows, int in_features,
                               int out_features) = 0;
  /// The MLP's first layer and its activation: pre = in @ weight^T + bias (bias may be null) and
  /// act = gelu(pre), both [rows, out_features] and both kept (gelu_backward reads pre). The
  /// default is linear_forward then gelu_forward; a backend may add the bias in the GELU pass
  /// (the CPU backend) or fuse both into the GEMM's epilogue.
  virtual void linear_gelu_forward(float* pre, float* act, const float* in, const float* weight,
                                   const float* bias, int rows, int in_features, int out_features);

  // ---- activations ---------------------------------------------------------------------------
  /// GELU with the tanh approximation (GPT-2's): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  virtual void gelu_forward(float* out, const float* in, std::size_t count) = 0;
  virtual void gelu_backward(float* d_in, const float* d_out, const float* in,
                             std::size_t count) = 0;
  /// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
  virtual void swiglu_forward(float* out, const float* gate, const float* up,
                              std::size_t count) = 0;
  virtual void swiglu_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                               const float* up, std::size_t count) = 0;

  // ---- attention -----------------------------------------------------------------------------
  /// Rotary position embedding applied in place to the query and key heads of qkv (values
  /// untouched). Pairs are (i, i + head_dim/2) (GPT-NeoX / OpenLM convention); position of row r
  /// is shape.first_position + r % seq; frequency of pair i is base^(-2i/head_dim).
  virtual void rotary_forward(float* qkv, const AttentionShape& shape, float base) = 0;
  /// Inverse rotation applied in place to the query and key parts of d_qkv.
  virtual void rotary_backward(float* d_qkv, const AttentionShape& shape, float base) = 0;
  /// Floats of the `state` buffer attention_forward saves for attention_backward. The default,
  /// batch * n_heads * seq * seq, holds the probabilities; a fused kernel keeps less (the CUDA
  /// backend: one log-sum-exp per query row, batch * n_heads * seq).
  virtual std::size_t attention_state_count(const AttentionShape& shape) const;
  /// Causal softmax attention with scale 1/sqrt(head_dim): out = softmax(Q K^T / sqrt(head_dim)
  /// masked to j <= i) V. out is [batch, seq, n_heads, head_dim]. `state`, of
  /// attention_state_count(shape) floats, receives what this backend's backward pass needs; its
  /// contents are private to the backend (the CPU backend: the probabilities
  /// [batch, n_heads, seq, seq], zero above the diagonal).
  virtual void attention_forward(float* out, float* state, const float* qkv,
                                 const AttentionShape& shape) = 0;
  /// d_qkv (same layout as qkv) from d_out, and the `out` and `state` attention_forward produced
  /// for the same qkv (both unchanged since); overwrites d_qkv. `out` lets a fused kernel get
  /// D = rowsum(P * dP) = rowsum(dO * O) per query row without recomputing dP; a backend that keeps
  /// the probabilities (the CPU backend) may ignore it.
  virtual void attention_backward(float* d_qkv, const float* d_out, const float* qkv,
                                  const float* out, const float* state,
                                  const AttentionShape& shape) = 0;

  /// Attention of incremental decoding (a KV cache): `count` query rows at positions [first,
  /// first + count) of one sequence, each over the keys and values of positions [0, its own]
  /// (causal), all read from `cache` [>= first + count, 3 * n_heads * head_dim], whose rows
  /// are packed as qkv's are (queries, keys, values), rotary already applied. out is
  /// [count, n_heads * head_dim], scale 1/sqrt(head_dim). The default computes on the host: in
  /// place when host_accessible, else through a copy of the rows it reads (slow: a device
  /// backend overrides it).
  virtual void cached_attention_forward(float* out, const float* cache, int first, int count,
                                        int n_heads, int head_dim);

  // ---- loss ----------------------------------------------------------------------------------
  /// Softmax cross-entropy per row, fused with its gradient.
  /// losses[r] = lse_r - logits[r, target_r] + z_loss * lse_r^2, lse_r = log(sum_j
  /// exp(logits[r,j])). When d_logits is not null it receives grad_scale * d(losses[r])/d(logits[r,
  /// :]); d_logits may alias logits (the logits are then consumed).
  virtual void softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                                     const int32_t* targets, int rows, int vocab, float z_loss,
                                     float grad_scale) = 0;

  // ---- vocab-parallel loss -------------------------------------------------------------------
  // The cross-entropy above, for logits split by vocabulary over a tensor-parallel group:
  // each rank computes statistics of its shard, the model combines them over the group
  // (max, then sums), and each rank finishes the loss and the gradient of its columns.
  // Backends that do not offer tensor parallelism may leave these to the default, which fails.

  /// row_max[r] = max_j logits[r, j]; row_sum[r] = sum_j exp(logits[r, j] - row_max[r]);
  /// target_logit[r] = logits[r, targets[r] - vocab_begin] if this shard holds the target,
  /// else 0. logits is [rows, vocab_local], columns vocab_begin .. vocab_begin + vocab_local.
  virtual void cross_entropy_shard_stats(float* row_max, float* row_sum, float* target_logit,
                                         const float* logits, const int32_t* targets, int rows,
                                         int vocab_local, int vocab_begin);
  /// row_sum[r] *= exp(row_max[r] - global_max[r]): the shard's sum relative to the group's max.
  virtual void rebase_row_sums(float* row_sum, const float* row_max, const float* global_max,
                               int rows);
  /// With lse = global_max + log(global_sum): losses[r] = lse - target_logit[r] + z_loss lse^2
  /// (target_logit summed over the group), and, when d_logits is not null, grad_scale times the
  /// loss gradient for this shard's columns (d_logits may alias logits).
  virtual void cross_entropy_shard_finish(float* losses, float* d_logits, const float* logits,
                                          const int32_t* targets, const float* global_max,
                                          const float* global_sum, const float* target_logit,
                                          int rows, int vocab_local, int vocab_begin, float z_loss,
                                          float grad_scale);

  // ---- optimizer -----------------------------------------------------------------------------
  /// One AdamW step with bias correction at step.step (1-based) and decoupled weight decay, on
  /// every segment: g = gradient_scale grad; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  /// p -= lr (m_hat / (sqrt(v_hat) + eps) + wd p) with the segment's wd. A whole model's
  /// parameters in one call, so that a device updates them in one launch.
  virtual void adamw_update(float* param, const float* grad, float* m, float* v,
                            const std::vector<AdamWSegment>& segments, const AdamWStep& step) = 0;
};

/// What a backend's GEMMs compute in. Storage stays fp32 either way.
enum class GemmPrecision {
  fp32,  ///< fp32 operands, fp32 compute
  bf16,  ///< operands rounded to bf16, products accumulated in fp32 (8 significant bits in), in
         ///< the style of PyTorch's autocast; which GEMMs each backend runs so, it documents
};

/// The reference CPU backend (oneDNN for GEMMs, OpenMP for element-wise work). With bf16 its
/// linear layers run on oneDNN's bf16 kernels (AMX or AVX512-BF16, emulated on plain AVX-512);
/// throws UsageError on a CPU without them (see backend/cpu/bf16_linear.hpp).
std::unique_ptr<Backend> make_cpu_backend(GemmPrecision precision = GemmPrecision::fp32);

}  // namespace tessera
