#include "backend/cuda/cudnn_graph.hpp"

#include <array>

#include "backend/cuda/cuda_check.hpp"

namespace tessera::cuda::cudnn {
namespace {

/// Building a graph fails in ordinary ways (an engine that does not take this shape): the
/// failure becomes GraphRefused with cuDNN's reason, for the caller's fallback and its log line.
void refuse_unless_ok(cudnnStatus_t status, const std::string& step) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  std::array<char, 512> detail{};
  cudnnGetLastErrorString(detail.data(), detail.size());
  std::string message = step + ": " + cudnnGetErrorString(status);
  if (detail[0] != '\0') message += " (" + std::string(detail.data()) + ")";
  throw GraphRefused(message);
}

std::string attribute_step(cudnnBackendAttributeName_t name) {
  return "setting cuDNN attribute " + std::to_string(static_cast<int>(name));
}

}  // namespace

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) {
  refuse_unless_ok(cudnnBackendCreateDescriptor(type, &handle_),
                   "creating cuDNN descriptor of type " + std::to_string(static_cast<int>(type)));
}

Descriptor::~Descriptor() {
  if (handle_ != nullptr) cudnnBackendDestroyDescriptor(handle_);
}

Descriptor& Descriptor::operator=(Descriptor&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cudnnBackendDestroyDescriptor(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Descriptor& Descriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                            int64_t count, const void* values) {
  refuse_unless_ok(cudnnBackendSetAttribute(handle_, name, type, count, values),
                   attribute_step(name));
  return *this;
}

Descriptor& Descriptor::set(cudnnBackendAttributeName_t name, const Descriptor& value) {
  cudnnBackendDescriptor_t raw = value.get();
  return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw);
}

void Descriptor::finalize(const char* what) {
  refuse_unless_ok(cudnnBackendFinalize(handle_), std::string("finalizing ") + what);
}

Tensor GraphBuilder::add(int64_t uid, std::vector<int64_t> dims, std::vector<int64_t> strides,
                         cudnnDataType_t type, bool is_virtual, bool by_value) {
  Descriptor descriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t rank = static_cast<int64_t>(dims.size());
  const int64_t alignment = 16;  // every buffer tessera passes is 16-byte aligned
  descriptor.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, rank, dims.data())
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, rank, strides.data())
      .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)
      .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment)
      .set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
  if (by_value) descriptor.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
  descriptor.finalize("a tensor descriptor");
  tensors_.emplace_back(uid, std::move(descriptor));
  return {uid, std::move(dims), std::move(strides), type};
}

Tensor GraphBuilder::tensor(int64_t uid, std::vector<int64_t> dims, std::vector<int64_t> strides,
                            cudnnDataType_t type) {
  return add(uid, std::move(dims), std::move(strides), type, false, false);
}

Tensor GraphBuilder::scalar(int64_t uid, cudnnDataType_t type) {
  return add(uid, {1, 1, 1, 1}, {1, 1, 1, 1}, type, false, true);
}

Tensor GraphBuilder::virtual_tensor(std::vector<int64_t> dims, std::vector<int64_t> strides,
                                    cudnnDataType_t type) {
  return add(next_virtual_uid_++, std::move(dims), std::move(strides), type, true, false);
}

Descriptor& GraphBuilder::descriptor_for(const Tensor& tensor) {
  for (auto& [uid, descriptor] : tensors_)
    if (uid == tensor.uid) return descriptor;
  throw GraphRefused("tensor " + std::to_string(tensor.uid) + " is not part of this graph");
}

void GraphBuilder::pointwise(cudnnPointwiseMode_t mode, const Tensor& y, const Tensor& x,
                             const Tensor* b, const Tensor* t, cudnnDataType_t precision,
                             int64_t axis) {
  Descriptor& kind = parts_.emplace_back(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  kind.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode)
      .set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
  if (axis >= 0) kind.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
  kind.finalize("a pointwise descriptor");
  Descriptor operation(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  operation.set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, kind)
      .set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, descriptor_for(x));
  if (b != nullptr) operation.set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, descriptor_for(*b));
  if (t != nullptr) operation.set(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, descriptor_for(*t));
  operation.set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, descriptor_for(y));
  operation.finalize("a pointwise operation");
  operations_.push_back(std::move(operation));
}

void GraphBuilder::reduction(cudnnReduceTensorOp_t op, const Tensor& y, const Tensor& x) {
  Descriptor& kind = parts_.emplace_back(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  kind.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &op)
      .set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &precision);
  kind.finalize("a reduction descriptor");
  Descriptor operation(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
  operation.set(CUDNN_ATTR_OPERATION_REDUCTION_DESC, kind)
      .set(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, descriptor_for(x))
      .set(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, descriptor_for(y));
  operation.finalize("a reduction operation");
  operations_.push_back(std::move(operation));
}

void GraphBuilder::matmul(const Tensor& c, const Tensor& a, const Tensor& b) {
  Descriptor& kind = parts_.emplace_back(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  kind.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &precision);
  kind.finalize("a matmul descriptor");
  Descriptor operation(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
  operation.set(CUDNN_ATTR_OPERATION_MATMUL_DESC, kind)
      .set(CUDNN_ATTR_OPERATION_MATMUL_ADESC, descriptor_for(a))
      .set(CUDNN_ATTR_OPERATION_MATMUL_BDESC, descriptor_for(b))
      .set(CUDNN_ATTR_OPERATION_MATMUL_CDESC, descriptor_for(c));
  operation.finalize("a matmul operation");
  operations_.push_back(std::move(operation));
}

void GraphBuilder::reshape(const Tensor& y, const Tensor& x) {
  Descriptor operation(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
  operation.set(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, descriptor_for(x))
      .set(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, descriptor_for(y));
  operation.finalize("a reshape operation");
  operations_.push_back(std::move(operation));
}

Plan GraphBuilder::build(cudnnHandle_t handle, const char* what) {
  const std::string name(what);
  std::vector<cudnnBackendDescriptor_t> raw_operations;
  raw_operations.reserve(operations_.size());
  for (const Descriptor& operation : operations_) raw_operations.push_back(operation.get());
  Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  graph
      .set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
           static_cast<int64_t>(raw_operations.size()), raw_operations.data())
      .set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  graph.finalize((name + "'s operation graph").c_str());

  std::string reasons;
  for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
        .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    try {
      heuristics.finalize((name + "'s engine heuristics").c_str());
    } catch (const GraphRefused& refused) {
      reasons += std::string(reasons.empty() ? "" : "; ") + refused.what();
      continue;
    }
    int64_t count = 0;
    refuse_unless_ok(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
                     name + ": counting engine configurations");
    std::vector<Descriptor> configs;
    std::vector<cudnnBackendDescriptor_t> raw_configs;
    for (int64_t i = 0; i < count; ++i) {
      raw_configs.push_back(configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR).get());
    }
    int64_t returned = 0;
    if (count > 0) {
      refuse_unless_ok(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned,
                                                raw_configs.data()),
                       name + ": reading engine configurations");
    }
    for (int64_t i = 0; i < returned; ++i) {
      Plan plan;
      try {
        plan.plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle)
            .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[static_cast<std::size_t>(i)]);
        plan.plan.finalize((name + "'s execution plan").c_str());
      } catch (const GraphRefused& refused) {
        reasons += std::string(reasons.empty() ? "" : "; ") + refused.what();
        continue;
      }
      int64_t returned_sizes = 0;
      refuse_unless_ok(
          cudnnBackendGetAttribute(plan.plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                   CUDNN_TYPE_INT64, 1, &returned_sizes, &plan.workspace_bytes),
          name + ": reading the workspace size");
      return plan;
    }
  }
  throw GraphRefused(name + ": no cuDNN engine runs this graph" +
                     (reasons.empty() ? std::string() : " (" + reasons + ")"));
}

void execute(cudnnHandle_t handle, const Plan& plan, const std::vector<int64_t>& uids,
             const std::vector<void*>& pointers, void* workspace) {
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, static_cast<int64_t>(uids.size()),
           uids.data())
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
           static_cast<int64_t>(pointers.size()), pointers.data())
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize("a variant pack");
  // The plan ran before (it was built for this shape): a failure now is not a refusal.
  TESSERA_CUDA_CHECK(cudnnBackendExecute(handle, plan.plan.get(), pack.get()));
}

}  // namespace tessera::cuda::cudnn
