// Private to src/backend/cuda: the CUDA implementation of the kernel seam. Users go through
// make_cuda_backend() in backend/cuda/cuda_backend.hpp. Each op family's methods live in their
// own .cu file; memory and scratch in cuda_backend.cpp; the GEMM entry points in matmul.cpp.
#pragma once

#include <cublas_api.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/cuda_backend.hpp"
#include "backend/memory_ledger.hpp"

namespace tessera::cuda {

/// Threads per block of the element-wise kernels.
inline constexpr int kBlockThreads = 256;

/// Blocks of kBlockThreads covering `count` elements (at least one, so empty launches are legal).
int blocks_for(std::size_t count, int threads = kBlockThreads);

/// Row-major GEMM through cuBLAS: C[m, n] = alpha op(A) op(B) + beta C, FP32 compute, no TF32.
/// trans_a / trans_b are 'N' or 'T'; lda, ldb, ldc are row strides in floats.
struct GemmShape {
  char trans_a = 'N', trans_b = 'N';
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;
};
void gemm(cublasHandle_t handle, const GemmShape& shape, float alpha, const float* a,
          const float* b, float beta, float* c);
/// `batch` such GEMMs; matrix i starts at a + i * stride_a (likewise b, c).
void gemm_strided_batched(cublasHandle_t handle, const GemmShape& shape, float alpha,
                          const float* a, long long stride_a, const float* b, long long stride_b,
                          float beta, float* c, long long stride_c, int batch);

/// One bf16 GEMM with the layout conventions of GemmShape: row-major
/// C[m, n] = alpha op(A) op(B) + beta C, A and B bf16, C fp32, FP32 accumulation; `batch` of them,
/// matrix i at a + i * stride_a (likewise b, c). `bias`, when set (batch 1, beta 0 only), is an
/// fp32 vector of n added to every row of C.
struct Bf16Gemm {
  GemmShape shape;
  float alpha = 1.0f, beta = 0.0f;
  const __nv_bfloat16* a = nullptr;
  long long stride_a = 0;
  const __nv_bfloat16* b = nullptr;
  long long stride_b = 0;
  float* c = nullptr;
  long long stride_c = 0;
  int batch = 1;
  const float* bias = nullptr;
};
/// Through cublasGemmStridedBatchedEx, which takes any layout; `bias` must be null. The fallback
/// for the shapes cuBLASLt finds no algorithm for.
void gemm_bf16(cublasHandle_t handle, const Bf16Gemm& job);

/// The fused attention of the bf16 precision (attention_bf16.cu): the tile products on bf16 tensor
/// cores, fp32 softmax statistics and accumulation; same state (lse) and results as the fp32
/// kernels up to bf16 rounding. d_rowsum is scratch of one float per query row (D).
void attention_forward_bf16(float* out, float* lse, const float* qkv, const AttentionShape& shape,
                            cudaStream_t stream);
void attention_backward_bf16(float* d_qkv, float* d_rowsum, const float* d_out, const float* qkv,
                             const float* out, const float* lse, const AttentionShape& shape,
                             cudaStream_t stream);

/// out[i] = bf16(in[i]), rounded to nearest even; four elements per thread where both pointers
/// allow 16-byte loads and 8-byte stores.
void cast_to_bf16(__nv_bfloat16* out, const float* in, std::size_t count, cudaStream_t stream);
/// out[i] = float(in[i]), exact.
void cast_from_bf16(float* out, const __nv_bfloat16* in, std::size_t count, cudaStream_t stream);

/// out[r, c] = bias[c] for every row r of a row-major [rows, columns] matrix.
void broadcast_rows(float* out, const float* bias, int rows, int columns, cudaStream_t stream);

/// A GEMM operand: the fp32 matrix and, in bf16 mode, its copy rounded to bf16 (same layout and
/// element offsets), which the GEMM then reads instead. Offsetting moves both alike, so strided
/// views (one head of the packed qkv) work on either.
struct Operand {
  const float* fp32 = nullptr;
  const __nv_bfloat16* bf16 = nullptr;  ///< null in fp32 mode

  Operand operator+(long long offset) const {
    return {fp32 + offset, bf16 == nullptr ? nullptr : bf16 + offset};
  }
};

/// The bf16 copy an operand is cast into: one reusable buffer per role, so that the operands one
/// op holds at once (three in linear backward) never overwrite each other.
enum class CastSlot { activation, weight, output_gradient };
inline constexpr std::size_t kCastSlots = 3;

class LtMatmul;
class CudnnAttention;

/// One block's share of an AdamW update: `count` (at most a few thousand) elements from `offset`.
struct AdamWChunk {
  std::size_t offset;
  unsigned count;
  float weight_decay;
};

/// A device block owned by the backend, grown (never shrunk) on demand.
struct DeviceBlock {
  void* data = nullptr;
  std::size_t bytes = 0;
};

/// Carves sub-buffers out of one scratch block, each aligned to 256 bytes.
class ScratchCarver {
 public:
  explicit ScratchCarver(void* base) : base_(static_cast<char*>(base)) {}
  /// Bytes a sequence of takes of these sizes needs (call with the same sizes in the same order).
  static std::size_t aligned(std::size_t bytes) { return (bytes + 255) / 256 * 256; }
  template <typename T>
  T* take(std::size_t count) {
    T* result = reinterpret_cast<T*>(base_ + used_);
    used_ += aligned(count * sizeof(T));
    return result;
  }

 private:
  char* base_;
  std::size_t used_ = 0;
};

/// Parameter-gradient reduction over rows, shared by LayerNorm, RMSNorm and the linear bias:
/// d_gain[c] += sum_r d_out[r, c] * xhat[r, c] and, when d_bias is not null,
/// d_bias[c] += sum_r d_out[r, c], with xhat = (in - mean[r]) * rstd[r] (mean null: zero) or
/// xhat = 1 when in is null (plain column sums into d_gain).
struct ColumnReduction {
  float* d_gain = nullptr;
  float* d_bias = nullptr;
  const float* d_out = nullptr;
  const float* in = nullptr;
  const float* mean = nullptr;
  const float* rstd = nullptr;
  int rows = 0;
  int dim = 0;
};
/// Floats of scratch `add_column_reductions` needs for this shape.
std::size_t column_reduction_scratch(int rows, int dim);
/// Two passes, no atomics: fixed chunks of rows give per-chunk partial sums, then each column
/// adds its partials in chunk order, so the result is bitwise reproducible.
void add_column_reductions(const ColumnReduction& job, float* scratch, cudaStream_t stream);

class CudaBackend final : public Backend {
 public:
  CudaBackend(GemmPrecision precision, CudaAttention attention);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string_view name() const override { return "cuda"; }
  DeviceDescription describe_device() const override;

  float* allocate(std::size_t count) override;
  void release(float* buffer) override;
  int32_t* allocate_tokens(std::size_t count) override;
  MemoryUse memory_use() const override;
  void release_tokens(int32_t* buffer) override;
  void copy_from_host(float* device, const float* host, std::size_t count) override;
  void copy_to_host(float* host, const float* device, std::size_t count) override;
  void copy_tokens_from_host(int32_t* device, const int32_t* host, std::size_t count) override;
  void fill_zero(float* buffer, std::size_t count) override;
  void copy_device(float* dst, const float* src, std::size_t count) override;

  void add(float* out, const float* a, const float* b, std::size_t count) override;
  void accumulate(float* out, const float* in, std::size_t count) override;
  void scale(float* x, float factor, std::size_t count) override;
  double sum_of_squares(const float* x, std::size_t count) override;
  /// One launch per range into one array of partials, one final reduction, one wait.
  double sum_of_squares_of_ranges(const float* base,
                                  const std::vector<BufferRange>& ranges) override;

  void embedding_forward(float* out, const int32_t* tokens, const float* table, int rows, int dim,
                         int vocab_begin, int vocab_local) override;
  void embedding_backward(float* d_table, const int32_t* tokens, const float* d_out, int rows,
                          int dim, int vocab_begin, int vocab_local) override;
  void position_forward(float* out, const float* table, int rows, int seq, int dim) override;
  void position_backward(float* d_table, const float* d_out, int rows, int seq, int dim) override;

  void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* gain,
                         const float* bias, int rows, int dim, float eps) override;
  void layernorm_backward(float* d_in, float* d_gain, float* d_bias, const float* d_out,
                          const float* in, const float* gain, const float* mean, const float* rstd,
                          int rows, int dim) override;
  void rmsnorm_forward(float* out, float* rstd, const float* in, const float* gain, int rows,
                       int dim, float eps) override;
  void rmsnorm_backward(float* d_in, float* d_gain, const float* d_out, const float* in,
                        const float* gain, const float* rstd, int rows, int dim) override;

  void linear_forward(float* out, const float* in, const float* weight, const float* bias, int rows,
                      int in_features, int out_features) override;
  void linear_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                       const float* in, const float* weight, int rows, int in_features,
                       int out_features) override;

  void gelu_forward(float* out, const float* in, std::size_t count) override;
  void gelu_backward(float* d_in, const float* d_out, const float* in, std::size_t count) override;
  void swiglu_forward(float* out, const float* gate, const float* up, std::size_t count) override;
  void swiglu_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                       const float* up, std::size_t count) override;

  void rotary_forward(float* qkv, const AttentionShape& shape, float base) override;
  void rotary_backward(float* d_qkv, const AttentionShape& shape, float base) override;
  /// One log-sum-exp per query row: batch * n_heads * seq (attention.cu).
  std::size_t attention_state_count(const AttentionShape& shape) const override;
  void attention_forward(float* out, float* state, const float* qkv,
                         const AttentionShape& shape) override;
  void attention_backward(float* d_qkv, const float* d_out, const float* qkv, const float* out,
                          const float* state, const AttentionShape& shape) override;
  /// One block per (new row, head) over the cache (attention_cached.cu).
  void cached_attention_forward(float* out, const float* cache, int first, int count, int n_heads,
                                int head_dim) override;

  void softmax_cross_entropy(float* losses, float* d_logits, const float* logits,
                             const int32_t* targets, int rows, int vocab, float z_loss,
                             float grad_scale) override;
  void cross_entropy_shard_stats(float* row_max, float* row_sum, float* target_logit,
                                 const float* logits, const int32_t* targets, int rows,
                                 int vocab_local, int vocab_begin) override;
  void rebase_row_sums(float* row_sum, const float* row_max, const float* global_max,
                       int rows) override;
  void cross_entropy_shard_finish(float* losses, float* d_logits, const float* logits,
                                  const int32_t* targets, const float* global_max,
                                  const float* global_sum, const float* target_logit, int rows,
                                  int vocab_local, int vocab_begin, float z_loss,
                                  float grad_scale) override;

  void adamw_update(float* param, const float* grad, float* m, float* v,
                    const std::vector<AdamWSegment>& segments, const AdamWStep& step) override;

  /// The stream all of this backend's work is ordered on.
  cudaStream_t stream() const { return stream_; }

 private:
  /// Device scratch of at least `bytes` bytes, owned by the backend and grown (never shrunk) on
  /// demand, so kernels allocate only the first time they see a larger shape. Work on the
  /// backend's stream is ordered, so consecutive calls may reuse it; concurrent calls on one
  /// backend object are not supported.
  void* scratch(std::size_t bytes);
  /// `block` holding at least `bytes` bytes: reallocated (after the stream's queued work, which
  /// cudaFree waits for) only when it is too small.
  void* grow(DeviceBlock& block, std::size_t bytes);
  /// cudaMalloc; a device without the room throws ResourceError naming the amount and the GPU.
  static void* device_malloc(std::size_t bytes);
  /// cudaMalloc'ed, recorded in the ledger and zeroed on the stream; at least one byte, so that a
  /// count of 0 still yields a pointer.
  void* allocate_zeroed(std::size_t bytes);
  /// cudaFree, and out of the ledger.
  void free_block(void* block);
  /// The operand a GEMM reads for this fp32 matrix of `count` elements: in bf16 mode, a bf16 copy
  /// made now in `slot` (valid until the next cast into that slot); in fp32 mode the matrix itself.
  Operand operand(CastSlot slot, const float* matrix, std::size_t count);
  /// C[m, n] = op(A) op(B) + beta C (+ bias[n] on every row when bias is set, with beta 0), in
  /// this backend's precision. fp32: the bias is broadcast into C first and the GEMM adds onto it.
  void matmul(const GemmShape& shape, Operand a, Operand b, float beta, float* c,
              const float* bias = nullptr);
  /// `batch` GEMMs C_i = alpha op(A_i) op(B_i) + beta C_i, in this backend's precision.
  void matmul_batched(const GemmShape& shape, float alpha, Operand a, long long stride_a, Operand b,
                      long long stride_b, float beta, float* c, long long stride_c, int batch);
  /// A bf16 GEMM through cuBLASLt (its bias epilogue when asked), else the bias as a broadcast and
  /// cublasGemmStridedBatchedEx.
  void run_bf16(Bf16Gemm job);
  /// Checks the launch of the kernel just enqueued (bad configuration, missing image for the
  /// device's architecture).
  static void check_launch();
  /// Attention through cuDNN (attention_cudnn.cpp), on bf16 copies of the fp32 operands; false,
  /// with nothing done, when the shape is one cuDNN does not run (or cuDNN attention is off).
  bool attention_forward_cudnn(float* out, float* state, const float* qkv,
                               const AttentionShape& shape);
  bool attention_backward_cudnn(float* d_qkv, const float* d_out, const float* qkv,
                                const float* out, const float* state, const AttentionShape& shape);
  /// Rotates the query and key heads by +angle (sign 1) or -angle (sign -1).
  void rotate(float* qkv, const AttentionShape& shape, float base, float sign);
  /// Runs add_column_reductions in this backend's scratch and stream.
  void reduce_columns(const ColumnReduction& job);

  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceBlock scratch_;
  std::array<DeviceBlock, kCastSlots> cast_buffers_;  ///< bf16 operand copies, by CastSlot
  std::unique_ptr<LtMatmul> lt_;                      ///< cuBLASLt plans; set exactly in bf16 mode
  /// cuDNN's fused attention: set in bf16 mode unless CudaAttention::native was asked for.
  std::unique_ptr<CudnnAttention> cudnn_attention_;
  /// The chunks of the last segments adamw_update was given, on the host and on the device.
  std::vector<AdamWSegment> adamw_segments_;
  std::vector<AdamWChunk> adamw_chunks_;
  DeviceBlock adamw_table_;
  int* error_flag_ = nullptr;  ///< device int set by kernels that find invalid input
  MemoryLedger ledger_;        ///< every block above, with cuBLASLt's workspace
};

}  // namespace tessera::cuda
