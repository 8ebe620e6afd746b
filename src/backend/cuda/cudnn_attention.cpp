#include "backend/cuda/cudnn_attention.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/cudnn_graph.hpp"
#include "core/error.hpp"

namespace tessera::cuda {
namespace {

using cudnn::GraphBuilder;
using cudnn::Tensor;
using Dims = std::vector<int64_t>;

// Unique ids of the tensors passed at execution.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kOut,
  kStats,
  kScale,
  kMaskedScore,
  kDOut,
  kDQ,
  kDK,
  kDV,
  kOne,
  kSoftmaxSum,  ///< rowsum(dO * O), a tensor of the backward graph that lives in its workspace
};

/// The dimensions of one shape, as cuDNN's int64 dims and strides take them. Q, K, V, dQ, dK, dV
/// are [batch, heads, seq, head_dim] views of the packed [batch, seq, 3, heads, head_dim]
/// activation; out and d_out views of [batch, seq, heads, head_dim].
struct Layout {
  int64_t b, h, s, d;
  int64_t qkv_row() const { return 3 * h * d; }
  Dims heads_view() const { return {b, h, s, d}; }
  Dims packed_strides() const { return {s * qkv_row(), d, qkv_row(), 1}; }
  /// K^T and V^T: [batch, heads, head_dim, seq] over the same memory.
  Dims transposed_dims() const { return {b, h, d, s}; }
  Dims transposed_strides() const { return {s * qkv_row(), d, 1, qkv_row()}; }
  Dims out_strides() const { return {s * h * d, d, h * d, 1}; }
  Dims scores() const { return {b, h, s, s}; }
  Dims score_strides() const { return {h * s * s, s * s, s, 1}; }
  /// The scores transposed for the products with P^T and dS^T.
  Dims transposed_score_strides() const { return {h * s * s, s * s, 1, s}; }
  Dims rows() const { return {b, h, s, 1}; }
  Dims row_strides() const { return {h * s, s, 1, 1}; }
};

Layout layout_of(const AttentionShape& shape) {
  return {shape.batch, shape.n_heads, shape.seq, shape.head_dim};
}

/// scores with the entries above the diagonal (key after query) replaced by the masked score.
Tensor causal_mask(GraphBuilder& graph, const Layout& l, const Tensor& scores,
                   const Tensor& masked_score) {
  const Tensor row = graph.virtual_tensor(l.scores(), l.score_strides(), CUDNN_DATA_INT32);
  graph.pointwise(CUDNN_POINTWISE_GEN_INDEX, row, scores, nullptr, nullptr, CUDNN_DATA_FLOAT, 2);
  const Tensor column = graph.virtual_tensor(l.scores(), l.score_strides(), CUDNN_DATA_INT32);
  graph.pointwise(CUDNN_POINTWISE_GEN_INDEX, column, scores, nullptr, nullptr, CUDNN_DATA_FLOAT, 3);
  const Tensor keep = graph.virtual_tensor(l.scores(), l.score_strides(), CUDNN_DATA_BOOLEAN);
  graph.pointwise(CUDNN_POINTWISE_CMP_GE, keep, row, &column, nullptr, CUDNN_DATA_BOOLEAN);
  const Tensor masked = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_BINARY_SELECT, masked, scores, &masked_score, &keep);
  return masked;
}

/// scale Q K^T, the scores both passes start from.
Tensor scaled_scores(GraphBuilder& graph, const Layout& l, const Tensor& q, const Tensor& k_t,
                     const Tensor& scale) {
  const Tensor products = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.matmul(products, q, k_t);
  const Tensor scores = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_MUL, scores, products, &scale);
  return scores;
}

cudnn::Plan build_forward(cudnnHandle_t handle, const Layout& l) {
  GraphBuilder graph;
  const Tensor q = graph.tensor(kQ, l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor k_t =
      graph.tensor(kK, l.transposed_dims(), l.transposed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor v = graph.tensor(kV, l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor out = graph.tensor(kOut, l.heads_view(), l.out_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor stats = graph.tensor(kStats, l.rows(), l.row_strides(), CUDNN_DATA_FLOAT);
  const Tensor scale = graph.scalar(kScale, CUDNN_DATA_FLOAT);
  const Tensor masked_score = graph.scalar(kMaskedScore, CUDNN_DATA_FLOAT);

  const Tensor scores = scaled_scores(graph, l, q, k_t, scale);
  const Tensor masked = causal_mask(graph, l, scores, masked_score);
  // Softmax with its statistics: max, exp(s - max), sum, lse = max + log(sum), P = exp / sum.
  const Tensor row_max = graph.virtual_tensor(l.rows(), l.row_strides());
  graph.reduction(CUDNN_REDUCE_TENSOR_MAX, row_max, masked);
  const Tensor shifted = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_SUB, shifted, masked, &row_max);
  const Tensor exponentials = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_EXP, exponentials, shifted);
  const Tensor row_sum = graph.virtual_tensor(l.rows(), l.row_strides());
  graph.reduction(CUDNN_REDUCE_TENSOR_ADD, row_sum, exponentials);
  const Tensor log_sum = graph.virtual_tensor(l.rows(), l.row_strides());
  graph.pointwise(CUDNN_POINTWISE_LOG, log_sum, row_sum);
  graph.pointwise(CUDNN_POINTWISE_ADD, stats, row_max, &log_sum);
  const Tensor probabilities =
      graph.virtual_tensor(l.scores(), l.score_strides(), CUDNN_DATA_BFLOAT16);
  graph.pointwise(CUDNN_POINTWISE_DIV, probabilities, exponentials, &row_sum);
  graph.matmul(out, probabilities, v);
  return graph.build(handle, "cuDNN attention forward");
}

cudnn::Plan build_backward(cudnnHandle_t handle, const Layout& l) {
  GraphBuilder graph;
  const Tensor q = graph.tensor(kQ, l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor k_t =
      graph.tensor(kK, l.transposed_dims(), l.transposed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor v_t =
      graph.tensor(kV, l.transposed_dims(), l.transposed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor out = graph.tensor(kOut, l.heads_view(), l.out_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor d_out = graph.tensor(kDOut, l.heads_view(), l.out_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor stats = graph.tensor(kStats, l.rows(), l.row_strides(), CUDNN_DATA_FLOAT);
  const Tensor d_q = graph.tensor(kDQ, l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor d_k = graph.tensor(kDK, l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor d_v = graph.tensor(kDV, l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  const Tensor scale = graph.scalar(kScale, CUDNN_DATA_FLOAT);
  const Tensor masked_score = graph.scalar(kMaskedScore, CUDNN_DATA_FLOAT);
  const Tensor one = graph.scalar(kOne, CUDNN_DATA_FLOAT);

  // D = rowsum(dO * O), kept in the workspace. (The product's strides are those cuDNN's own
  // frontend gives it; it never reaches memory.)
  const Tensor products_o =
      graph.virtual_tensor(l.heads_view(), {l.h * l.s * l.d, l.s * l.d, l.h * l.d, 1});
  graph.pointwise(CUDNN_POINTWISE_MUL, products_o, d_out, &out);
  const Tensor rowsum = graph.virtual_tensor(l.rows(), l.row_strides());
  graph.reduction(CUDNN_REDUCE_TENSOR_ADD, rowsum, products_o);
  const Tensor softmax_sum = graph.tensor(kSoftmaxSum, l.rows(), l.row_strides(), CUDNN_DATA_FLOAT);
  graph.pointwise(CUDNN_POINTWISE_MUL, softmax_sum, rowsum, &one);

  // P = exp(scale Q K^T - lse), masked.
  const Tensor scores = scaled_scores(graph, l, q, k_t, scale);
  const Tensor shifted = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_SUB, shifted, scores, &stats);
  const Tensor masked = causal_mask(graph, l, shifted, masked_score);
  const Tensor probabilities = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_EXP, probabilities, masked);

  // dV = P^T dO.
  const Tensor probabilities_t =
      graph.virtual_tensor(l.scores(), l.transposed_score_strides(), CUDNN_DATA_BFLOAT16);
  graph.reshape(probabilities_t, probabilities);
  graph.matmul(d_v, probabilities_t, d_out);

  // dS = P (dO V^T - D) scale.
  const Tensor d_probabilities = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.matmul(d_probabilities, d_out, v_t);
  const Tensor centred = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_SUB, centred, d_probabilities, &softmax_sum);
  const Tensor weighted = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_MUL, weighted, centred, &probabilities);
  const Tensor d_scores = graph.virtual_tensor(l.scores(), l.score_strides());
  graph.pointwise(CUDNN_POINTWISE_MUL, d_scores, weighted, &scale);

  // dK = dS^T Q, dQ = dS K.
  const Tensor d_scores_t =
      graph.virtual_tensor(l.scores(), l.transposed_score_strides(), CUDNN_DATA_BFLOAT16);
  graph.reshape(d_scores_t, d_scores);
  graph.matmul(d_k, d_scores_t, q);
  const Tensor k = graph.virtual_tensor(l.heads_view(), l.packed_strides(), CUDNN_DATA_BFLOAT16);
  graph.reshape(k, k_t);
  graph.matmul(d_q, d_scores, k);
  return graph.build(handle, "cuDNN attention backward");
}

/// Why cuDNN's engines cannot take a shape without asking them, or "" when they may.
std::string shape_refusal(const AttentionShape& shape) {
  if (shape.head_dim % 8 != 0 || shape.head_dim > 128)
    return "cuDNN's engines need head_dim a multiple of 8 and at most 128";
  return {};
}

std::size_t softmax_sum_bytes(const Layout& l) {
  return static_cast<std::size_t>(l.b * l.h * l.s) * sizeof(float);
}

}  // namespace

struct CudnnAttention::Plans {
  cudnn::Plan forward, backward;
};

CudnnAttention::CudnnAttention(cudaStream_t stream)
    : masked_score_(cudnnGetVersion() < 91000 ? std::numeric_limits<float>::lowest()
                                              : -std::numeric_limits<float>::infinity()) {
  TESSERA_CUDA_CHECK(cudnnCreate(&handle_));
  TESSERA_CUDA_CHECK(cudnnSetStream(handle_, stream));
}

CudnnAttention::~CudnnAttention() {
  plans_.clear();  // plans refer to the handle
  if (handle_ != nullptr) cudnnDestroy(handle_);
}

CudnnAttention::ShapeKey CudnnAttention::key(const AttentionShape& shape) {
  return {shape.batch, shape.seq, shape.n_heads, shape.head_dim};
}

bool CudnnAttention::runs(const AttentionShape& shape) {
  const auto found = plans_.find(key(shape));
  if (found != plans_.end()) return found->second != nullptr;
  std::string refusal = shape_refusal(shape);
  std::unique_ptr<Plans> plans;
  if (refusal.empty()) {
    try {
      const Layout l = layout_of(shape);
      plans = std::make_unique<Plans>(Plans{build_forward(handle_, l), build_backward(handle_, l)});
    } catch (const cudnn::GraphRefused& refused) {
      refusal = refused.what();
    }
  }
  if (plans == nullptr) {
    std::fprintf(stderr,
                 "tessera: note: cuDNN attention does not run batch %d, seq %d, %d heads, head_dim "
                 "%d (%s); tessera's own bf16 attention kernel runs it\n",
                 shape.batch, shape.seq, shape.n_heads, shape.head_dim, refusal.c_str());
  }
  const bool accepted = plans != nullptr;
  plans_.emplace(key(shape), std::move(plans));
  return accepted;
}

const CudnnAttention::Plans& CudnnAttention::plans(const AttentionShape& shape) const {
  const auto found = plans_.find(key(shape));
  TESSERA_CHECK(found != plans_.end() && found->second != nullptr,
                "cuDNN attention was asked to run a shape it has no plans for");
  return *found->second;
}

std::size_t CudnnAttention::forward_workspace_bytes(const AttentionShape& shape) const {
  return static_cast<std::size_t>(plans(shape).forward.workspace_bytes);
}

std::size_t CudnnAttention::backward_workspace_bytes(const AttentionShape& shape) const {
  return ScratchCarver::aligned(static_cast<std::size_t>(plans(shape).backward.workspace_bytes)) +
         softmax_sum_bytes(layout_of(shape));
}

void CudnnAttention::forward(__nv_bfloat16* out, float* stats, const __nv_bfloat16* qkv,
                             const AttentionShape& shape, void* workspace) {
  const Layout l = layout_of(shape);
  float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  auto* q = const_cast<__nv_bfloat16*>(qkv);  // the variant pack takes void*; cuDNN only reads
  cudnn::execute(handle_, plans(shape).forward, {kQ, kK, kV, kOut, kStats, kScale, kMaskedScore},
                 {q, q + l.h * l.d, q + 2 * l.h * l.d, out, stats, &scale, &masked_score_},
                 workspace);
}

void CudnnAttention::backward(__nv_bfloat16* d_qkv, const __nv_bfloat16* d_out,
                              const __nv_bfloat16* qkv, const __nv_bfloat16* out,
                              const float* stats, const AttentionShape& shape, void* workspace) {
  const Layout l = layout_of(shape);
  const cudnn::Plan& plan = plans(shape).backward;
  float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  float one = 1.0f;
  auto* q = const_cast<__nv_bfloat16*>(qkv);  // inputs: cuDNN only reads them
  void* softmax_sum = static_cast<char*>(workspace) +
                      ScratchCarver::aligned(static_cast<std::size_t>(plan.workspace_bytes));
  cudnn::execute(
      handle_, plan,
      {kQ, kK, kV, kOut, kDOut, kStats, kDQ, kDK, kDV, kScale, kMaskedScore, kOne, kSoftmaxSum},
      {q, q + l.h * l.d, q + 2 * l.h * l.d, const_cast<__nv_bfloat16*>(out),
       const_cast<__nv_bfloat16*>(d_out), const_cast<float*>(stats), d_qkv, d_qkv + l.h * l.d,
       d_qkv + 2 * l.h * l.d, &scale, &masked_score_, &one, softmax_sum},
      workspace);
}

}  // namespace tessera::cuda
