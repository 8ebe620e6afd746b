#include "model/parameters.hpp"

#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "model/initializer.hpp"

namespace tessera {

ParameterStore::~ParameterStore() {
  if (values_) backend_.release(values_);
  if (gradients_) backend_.release(gradients_);
}

std::size_t ParameterStore::add(std::string name, std::vector<int64_t> shape, InitKind init,
                                float init_std, TensorSplit split) {
  TESSERA_CHECK(values_ == nullptr, "parameter '" + name + "' registered after allocate()");
  const auto dim = static_cast<std::size_t>(split.dim);
  TESSERA_CHECK(dim < shape.size() && split.parts >= 1 && shape[dim] % split.parts == 0 &&
                    split.index >= 0 && split.index < split.parts,
                "'" + name + "' cannot be split in " + std::to_string(split.parts) +
                    " along dimension " + std::to_string(split.dim));
  ParameterInfo info;
  info.name = std::move(name);
  info.global_shape = shape;
  info.local_shape = shape;
  info.global_offset.assign(shape.size(), 0);
  info.local_shape[dim] = shape[dim] / split.parts;
  info.global_offset[dim] = info.local_shape[dim] * split.index;
  info.count = static_cast<std::size_t>(std::accumulate(
      info.local_shape.begin(), info.local_shape.end(), int64_t{1}, std::multiplies<>()));
  info.offset = total_count_;
  info.init = init;
  info.init_std = init_std;
  total_count_ += info.count;
  infos_.push_back(std::move(info));
  return infos_.size() - 1;
}

void ParameterStore::allocate(std::size_t multiple) {
  TESSERA_CHECK(values_ == nullptr, "allocate() called twice");
  padded_count_ = (total_count_ + multiple - 1) / multiple * multiple;
  values_ = backend_.allocate(padded_count_);
  gradients_ = backend_.allocate(padded_count_);
}

std::size_t ParameterStore::index_of(const std::string& name) const {
  for (std::size_t i = 0; i < infos_.size(); ++i) {
    if (infos_[i].name == name) return i;
  }
  throw InternalError("no parameter named '" + name + "'");
}

void ParameterStore::initialize(uint64_t seed) {
  std::vector<float> host;
  for (std::size_t i = 0; i < infos_.size(); ++i) {
    const ParameterInfo& info = infos_[i];
    host.assign(info.count, 0.0f);
    fill_parameter_block(info, seed, host.data());
    backend_.copy_from_host(value(i), host.data(), info.count);
  }
  zero_gradients();
}

void ParameterStore::zero_gradients() { backend_.fill_zero(gradients_, padded_count_); }

}  // namespace tessera
