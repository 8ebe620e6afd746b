// The tensors the crash-safety writer saves at each step (values keyed by the step).
#pragma once

#include <vector>

#include "checkpoint_test_util.hpp"

namespace tessera::checkpoint_test {

struct CrashTensor {
  const char* name;
  std::vector<int64_t> shape;
};

/// 8 MiB in all, large enough that a kill often lands inside a write.
inline const std::vector<CrashTensor>& crash_tensors() {
  static const std::vector<CrashTensor> tensors = {{"model/big/weight", {512, 4096}},
                                                   {"model/small/bias", {64}}};
  return tensors;
}

/// Whole-tensor blocks of every crash tensor for `step`; `storage` keeps their values.
inline std::vector<TensorBlock> crash_blocks(int64_t step,
                                             std::vector<std::vector<float>>& storage) {
  std::vector<TensorBlock> blocks;
  storage.reserve(crash_tensors().size());
  for (const CrashTensor& tensor : crash_tensors()) {
    const Split whole{tensor.shape, std::vector<int64_t>(tensor.shape.size(), 0)};
    storage.push_back(block_values(tensor.name, static_cast<uint64_t>(step), tensor.shape, whole));
    blocks.push_back({tensor.name, tensor.shape, tensor.shape, whole.global_offset,
                      storage.back().data(), true});
  }
  return blocks;
}

}  // namespace tessera::checkpoint_test
