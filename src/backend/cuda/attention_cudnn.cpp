// The CUDA backend's attention through cuDNN (cudnn_attention.hpp) in the bf16 precision: the
// seam's fp32 operands are rounded to bf16 in scratch, cuDNN runs on those, and its bf16 results
// are widened back into the fp32 outputs. The state attention_forward saves is cuDNN's log-sum-exp
// per query row, the same size as the native kernels' state.
#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cudnn_attention.hpp"

namespace tessera::cuda {
namespace {

std::size_t qkv_count(const AttentionShape& s) {
  return static_cast<std::size_t>(s.batch) * static_cast<std::size_t>(s.seq) * 3 *
         static_cast<std::size_t>(s.n_heads) * static_cast<std::size_t>(s.head_dim);
}

std::size_t out_count(const AttentionShape& s) { return qkv_count(s) / 3; }

}  // namespace

bool CudaBackend::attention_forward_cudnn(float* out, float* state, const float* qkv,
                                          const AttentionShape& shape) {
  if (cudnn_attention_ == nullptr || !cudnn_attention_->runs(shape)) return false;
  const std::size_t workspace_bytes = cudnn_attention_->forward_workspace_bytes(shape);
  ScratchCarver carver(scratch(ScratchCarver::aligned(qkv_count(shape) * 2) +
                               ScratchCarver::aligned(out_count(shape) * 2) + workspace_bytes));
  auto* qkv16 = carver.take<__nv_bfloat16>(qkv_count(shape));
  auto* out16 = carver.take<__nv_bfloat16>(out_count(shape));
  void* workspace = carver.take<char>(workspace_bytes);
  cast_to_bf16(qkv16, qkv, qkv_count(shape), stream_);
  check_launch();
  cudnn_attention_->forward(out16, state, qkv16, shape, workspace);
  cast_from_bf16(out, out16, out_count(shape), stream_);
  check_launch();
  return true;
}

bool CudaBackend::attention_backward_cudnn(float* d_qkv, const float* d_out, const float* qkv,
                                           const float* out, const float* state,
                                           const AttentionShape& shape) {
  if (cudnn_attention_ == nullptr || !cudnn_attention_->runs(shape)) return false;
  const std::size_t qkv_bytes = ScratchCarver::aligned(qkv_count(shape) * 2);
  const std::size_t out_bytes = ScratchCarver::aligned(out_count(shape) * 2);
  const std::size_t workspace_bytes = cudnn_attention_->backward_workspace_bytes(shape);
  ScratchCarver carver(scratch(2 * qkv_bytes + 2 * out_bytes + workspace_bytes));
  auto* qkv16 = carver.take<__nv_bfloat16>(qkv_count(shape));
  auto* d_qkv16 = carver.take<__nv_bfloat16>(qkv_count(shape));
  auto* out16 = carver.take<__nv_bfloat16>(out_count(shape));
  auto* d_out16 = carver.take<__nv_bfloat16>(out_count(shape));
  void* workspace = carver.take<char>(workspace_bytes);
  cast_to_bf16(qkv16, qkv, qkv_count(shape), stream_);
  cast_to_bf16(out16, out, out_count(shape), stream_);
  cast_to_bf16(d_out16, d_out, out_count(shape), stream_);
  check_launch();
  cudnn_attention_->backward(d_qkv16, d_out16, qkv16, out16, state, shape, workspace);
  cast_from_bf16(d_qkv, d_qkv16, qkv_count(shape), stream_);
  check_launch();
  return true;
}

}  // namespace tessera::cuda
