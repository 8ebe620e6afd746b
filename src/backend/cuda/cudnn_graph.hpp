// cuDNN's graph (backend) API in C++ terms, for the fused operations tessera hands to cuDNN
// (attention, cudnn_attention.hpp). The cudnn-frontend headers are not part of cuDNN's packages,
// so this is the part of them tessera needs: owned descriptors, a builder that names tensors by
// unique id and chains operations, and an execution plan chosen once by cuDNN's heuristics.
// Private to src/backend/cuda.
#pragma once

#include <cudnn_graph.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tessera::cuda::cudnn {

/// cuDNN cannot run a graph (no engine supports it, or a descriptor was refused): the caller
/// falls back to its own kernels. what() names the step and cuDNN's own message.
class GraphRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One backend descriptor, destroyed with its owner.
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(Descriptor&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Descriptor& operator=(Descriptor&& other) noexcept;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return handle_; }
  /// cudnnBackendSetAttribute; throws GraphRefused naming `name` on failure.
  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                  const void* values);
  Descriptor& set(cudnnBackendAttributeName_t name, const Descriptor& value);
  void finalize(const char* what);

 private:
  cudnnBackendDescriptor_t handle_ = nullptr;
};

/// A tensor of a graph: its unique id and its descriptor's shape, for the operations that use it.
struct Tensor {
  int64_t uid = 0;
  std::vector<int64_t> dims, strides;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
};

/// A finalized execution plan and the workspace it needs.
struct Plan {
  Descriptor plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  int64_t workspace_bytes = 0;
};

/// Builds one operation graph. Tensors the caller passes data for at execution get the uid the
/// caller chooses (below kFirstVirtualUid); intermediate tensors, which never reach memory, are
/// numbered from there on. Scalars passed by value have a uid too and travel in the variant pack
/// as host pointers.
class GraphBuilder {
 public:
  static constexpr int64_t kFirstVirtualUid = 1000;

  /// A tensor in memory, owned by the caller.
  Tensor tensor(int64_t uid, std::vector<int64_t> dims, std::vector<int64_t> strides,
                cudnnDataType_t type);
  /// A scalar of [1, 1, 1, 1], its value given at execution through a host pointer.
  Tensor scalar(int64_t uid, cudnnDataType_t type);
  /// An intermediate of the graph.
  Tensor virtual_tensor(std::vector<int64_t> dims, std::vector<int64_t> strides,
                        cudnnDataType_t type = CUDNN_DATA_FLOAT);

  /// y = mode(x[, b[, t]]), computed in `precision`; `axis` only for CUDNN_POINTWISE_GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, const Tensor& y, const Tensor& x,
                 const Tensor* b = nullptr, const Tensor* t = nullptr,
                 cudnnDataType_t precision = CUDNN_DATA_FLOAT, int64_t axis = -1);
  /// y = reduction of x over the dimensions where y has size 1.
  void reduction(cudnnReduceTensorOp_t op, const Tensor& y, const Tensor& x);
  /// c = a b over the last two dimensions, batched over the others, fp32 accumulation.
  void matmul(const Tensor& c, const Tensor& a, const Tensor& b);
  /// y = x viewed with y's dimensions and strides.
  void reshape(const Tensor& y, const Tensor& x);

  /// The operation graph on `handle`, and the first plan cuDNN's heuristics (mode A, then the
  /// fallback list) offer that finalizes. Throws GraphRefused when there is none.
  Plan build(cudnnHandle_t handle, const char* what);

 private:
  Descriptor& descriptor_for(const Tensor& tensor);
  Tensor add(int64_t uid, std::vector<int64_t> dims, std::vector<int64_t> strides,
             cudnnDataType_t type, bool is_virtual, bool by_value);

  std::vector<std::pair<int64_t, Descriptor>> tensors_;
  std::vector<Descriptor> operations_;
  std::vector<Descriptor> parts_;  ///< the pointwise/reduction/matmul descriptors they refer to
  int64_t next_virtual_uid_ = kFirstVirtualUid;
};

/// Runs `plan` on `handle`'s stream with these tensors (uids and pointers in the same order) and
/// this workspace (at least plan.workspace_bytes).
void execute(cudnnHandle_t handle, const Plan& plan, const std::vector<int64_t>& uids,
             const std::vector<void*>& pointers, void* workspace);

}  // namespace tessera::cuda::cudnn
