#include "checkpoint_test_util.hpp"

#include <mpi.h>
#include <stdlib.h>

#include <bit>
#include <span>

#include "core/checksum.hpp"

namespace tessera::checkpoint_test {

Split split_block(const std::vector<int64_t>& shape, int dim, int parts, int index) {
  Split split{shape, std::vector<int64_t>(shape.size(), 0)};
  split.local_shape[dim] = shape[dim] / parts;
  split.global_offset[dim] = split.local_shape[dim] * index;
  return split;
}

std::vector<float> block_values(const std::string& name, uint64_t seed,
                                const std::vector<int64_t>& shape, const Split& block) {
  const uint64_t key = fnv1a64(std::as_bytes(std::span(name.data(), name.size())), seed);
  int64_t count = 1;
  for (int64_t extent : block.local_shape) count *= extent;
  std::vector<float> values(static_cast<std::size_t>(count));
  std::vector<int64_t> local(shape.size(), 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t global = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      global = global * shape[d] + block.global_offset[d] + local[d];
    }
    const uint64_t bits = key ^ (static_cast<uint64_t>(global) * 0x9E3779B97F4A7C15ull);
    values[static_cast<std::size_t>(i)] =
        static_cast<float>(static_cast<int64_t>(bits % 2000003) - 1000001) / 1024.0f;
    for (std::size_t d = shape.size(); d-- > 0;) {  // next local index, row-major
      if (++local[d] < block.local_shape[d]) break;
      local[d] = 0;
    }
  }
  return values;
}

std::string shared_temp_dir(MPI_Comm comm, const std::string& base) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string path(256, '\0');
  if (rank == 0) {
    std::string pattern = base + "/tessera_ckpt_XXXXXX";
    path = mkdtemp(pattern.data());
    path.resize(256);
  }
  MPI_Bcast(path.data(), 256, MPI_CHAR, 0, comm);
  path.resize(path.find('\0'));
  return path;
}

}  // namespace tessera::checkpoint_test
