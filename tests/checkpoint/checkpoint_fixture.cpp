#include "checkpoint_fixture.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

namespace tessera::checkpoint_test {

int rank_of(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

int size_of(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}

const std::vector<TestTensor>& test_tensors() {
  static const std::vector<TestTensor> tensors = {
      {"model/layers/0/attn/q/weight", {8, 6}, 0},
      {"model/layers/0/attn/out/weight", {6, 8}, 1},
      {"model/layers/0/norm/weight", {6}, -1},
      {"optimizer/m/model/layers/0/attn/q/weight", {4, 8, 3}, 1},
  };
  return tensors;
}

Blocks make_blocks(int parts, uint64_t seed, const std::vector<TestTensor>& tensors) {
  Blocks blocks;
  const int rank = rank_of();
  const int size = size_of();
  blocks.storage.reserve(64);
  for (const TestTensor& tensor : tensors) {
    const int count = tensor.dim < 0 ? 1 : parts;
    for (int part = 0; part < count; ++part) {
      const bool replicated = tensor.dim < 0;
      if (!replicated && part % size != rank) continue;
      const Split split = replicated
                              ? Split{tensor.shape, std::vector<int64_t>(tensor.shape.size())}
                              : split_block(tensor.shape, tensor.dim, parts, part);
      blocks.storage.push_back(block_values(tensor.name, seed, tensor.shape, split));
      const bool writer = !replicated || rank == 0;
      if (!writer) std::fill(blocks.storage.back().begin(), blocks.storage.back().end(), -7.0f);
      blocks.write.push_back({tensor.name, tensor.shape, split.local_shape, split.global_offset,
                              blocks.storage.back().data(), writer});
      blocks.read.push_back({tensor.name, tensor.shape, split.local_shape, split.global_offset,
                             blocks.storage.back().data()});
    }
  }
  return blocks;
}

void expect_reads_back(const std::filesystem::path& file, int parts, uint64_t seed,
                       const std::vector<TestTensor>& tensors) {
  Blocks blocks = make_blocks(parts, seed, tensors);
  for (auto& values : blocks.storage) std::fill(values.begin(), values.end(), 0.0f);
  read_checkpoint(MPI_COMM_WORLD, file, blocks.read);
  for (const TensorReadRequest& request : blocks.read) {
    const auto expected = block_values(request.name, seed, request.global_shape,
                                       {request.local_shape, request.global_offset});
    ASSERT_EQ(0, std::memcmp(expected.data(), request.data, expected.size() * sizeof(float)))
        << request.name << " read at a " << parts << "-way split";
  }
}

/// The UsageError message read_checkpoint throws, or "" if it did not throw one.
std::string usage_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

/// Flips bytes in the middle of a contiguous dataset's data, found through H5Dget_offset.
void flip_bytes(const std::filesystem::path& file, const std::string& dataset) {
  const hid_t file_id = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file_id, 0);
  const hid_t data = H5Dopen2(file_id, dataset.c_str(), H5P_DEFAULT);
  const haddr_t offset = H5Dget_offset(data);
  const hsize_t bytes = H5Dget_storage_size(data);
  H5Dclose(data);
  H5Fclose(file_id);
  ASSERT_NE(offset, HADDR_UNDEF);
  const int fd = open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char byte = 0;
  const auto at = static_cast<off_t>(offset + bytes / 2);
  ASSERT_EQ(1, pread(fd, &byte, 1, at));
  byte ^= 0x5A;
  ASSERT_EQ(1, pwrite(fd, &byte, 1, at));
  close(fd);
}

}  // namespace tessera::checkpoint_test
