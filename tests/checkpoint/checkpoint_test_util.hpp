// Tensors with known contents for the checkpoint tests: values are a function of the tensor
// name, a seed and the global element index, so any block of any split can be checked alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint/checkpoint.hpp"

namespace tessera::checkpoint_test {

/// A tensor of `shape` split into `parts` equal blocks along `dim`; block `index`.
struct Split {
  std::vector<int64_t> local_shape;
  std::vector<int64_t> global_offset;
};
Split split_block(const std::vector<int64_t>& shape, int dim, int parts, int index);

/// The values of the block, row-major: distinct, sign-mixed floats keyed by (name, seed, global
/// index).
std::vector<float> block_values(const std::string& name, uint64_t seed,
                                const std::vector<int64_t>& shape, const Split& block);

/// One fresh directory per call under `base`, the same path on every rank of `comm`.
std::string shared_temp_dir(MPI_Comm comm, const std::string& base = "/tmp");

}  // namespace tessera::checkpoint_test
