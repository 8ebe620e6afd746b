// Named model parameters in one flat buffer (and a matching gradient buffer) on the backend.
//
// Each parameter is a logical tensor with a stable name ("layers/3/attn/q/weight") and a global
// shape; a rank holds a block of it (local shape at a global offset). Without model parallelism
// the block is the whole tensor. Parameters registered one after another are adjacent in the flat
// buffer, which the model uses to run q, k and v as one GEMM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace tessera {

enum class InitKind { normal, ones, zeros };

/// How a rank holds a logical tensor: split into `parts` equal blocks along dimension `dim`,
/// this rank holding block `index`. parts == 1 means the whole tensor (replicated).
struct TensorSplit {
  int dim = 0;
  int index = 0;
  int parts = 1;
};

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> global_shape;
  std::vector<int64_t> local_shape;
  std::vector<int64_t> global_offset;  ///< first global index of the local block, per dimension
  std::size_t offset = 0;              ///< into the flat buffers, in elements
  std::size_t count = 0;               ///< local elements
  InitKind init = InitKind::normal;
  float init_std = 0.0f;  ///< standard deviation when init is normal
  /// True when every rank of a tensor-parallel group holds the whole tensor (norms, some
  /// biases): its gradient is then the same on each of them and counted once in norms.
  bool replicated() const { return local_shape == global_shape; }
};

class ParameterStore {
 public:
  explicit ParameterStore(Backend& backend) : backend_(backend) {}
  ~ParameterStore();
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  /// Registers a parameter of global shape `shape` of which this rank holds the block `split`
  /// says; returns its index. Only before `allocate`.
  std::size_t add(std::string name, std::vector<int64_t> shape, InitKind init, float init_std,
                  TensorSplit split = {});
  /// Allocates the flat parameter and gradient buffers once every parameter is registered,
  /// padded with zeros to a multiple of `multiple` elements (equal ZeRO-1 shards).
  void allocate(std::size_t multiple = 1);

  /// Draws every element from a counter-based generator keyed by (seed, name, global index), so
  /// the values do not depend on how the tensor is split across ranks.
  void initialize(uint64_t seed);

  const std::vector<ParameterInfo>& infos() const { return infos_; }
  const ParameterInfo& info(std::size_t index) const { return infos_.at(index); }
  std::size_t index_of(const std::string& name) const;
  std::size_t total_count() const { return total_count_; }
  /// total_count() rounded up to the multiple given to allocate().
  std::size_t padded_count() const { return padded_count_; }

  float* values() { return values_; }
  float* gradients() { return gradients_; }
  const float* values() const { return values_; }
  const float* gradients() const { return gradients_; }
  float* value(std::size_t index) { return values_ + infos_[index].offset; }
  float* gradient(std::size_t index) { return gradients_ + infos_[index].offset; }
  void zero_gradients();

 private:
  Backend& backend_;
  std::vector<ParameterInfo> infos_;
  std::size_t total_count_ = 0;
  std::size_t padded_count_ = 0;
  float* values_ = nullptr;
  float* gradients_ = nullptr;
};

}  // namespace tessera
