// Causal attention through cuDNN's fused flash-attention engines (the ones PyTorch's
// scaled_dot_product_attention and llm.c use), for the bf16 precision. Private to src/backend/cuda.
//
// The graphs are the ones cuDNN's engines recognise as scaled dot-product attention, built with
// the graph API (cudnn_graph.hpp): forward Q K^T, scale, causal mask, softmax with its
// log-sum-exp statistics, P V; backward with dP's workspace, which makes cuDNN compute dQ
// without atomics, so gradients are bitwise reproducible. Q, K, V are read in place from the
// packed bf16 [batch, seq, 3, heads, head_dim] activation, and dQ, dK, dV written into one of the
// same layout. Plans are built once per shape and kept.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <cudnn_graph.h>

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace tessera::cuda {

namespace cudnn {
struct Plan;
}

class CudnnAttention {
 public:
  explicit CudnnAttention(cudaStream_t stream);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  /// True when cuDNN runs both passes of this shape. The first call per shape builds its plans;
  /// a shape cuDNN refuses is reported once on stderr with the reason, and the caller runs its
  /// own kernels for both passes (the statistics of the two implementations are not exchanged).
  bool runs(const AttentionShape& shape);
  /// Device workspace each pass needs for a shape `runs` accepted.
  std::size_t forward_workspace_bytes(const AttentionShape& shape) const;
  std::size_t backward_workspace_bytes(const AttentionShape& shape) const;

  /// out [batch, seq, heads, head_dim] bf16 and stats [batch, heads, seq] fp32 (the log-sum-exp
  /// of each query row's scaled scores) from the packed bf16 qkv.
  void forward(__nv_bfloat16* out, float* stats, const __nv_bfloat16* qkv,
               const AttentionShape& shape, void* workspace);
  /// d_qkv (packed like qkv) from d_out and the forward's qkv, out and stats.
  void backward(__nv_bfloat16* d_qkv, const __nv_bfloat16* d_out, const __nv_bfloat16* qkv,
                const __nv_bfloat16* out, const float* stats, const AttentionShape& shape,
                void* workspace);

 private:
  struct Plans;
  using ShapeKey = std::array<int, 4>;
  static ShapeKey key(const AttentionShape& shape);
  const Plans& plans(const AttentionShape& shape) const;

  cudnnHandle_t handle_ = nullptr;
  /// -inf for the causal mask, as cuDNN's engines expect it (the lowest float before cuDNN 9.10).
  float masked_score_;
  std::map<ShapeKey, std::unique_ptr<Plans>> plans_;  ///< null for a shape cuDNN refused
};

}  // namespace tessera::cuda
