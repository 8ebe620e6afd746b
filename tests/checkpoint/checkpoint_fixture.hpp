// The checkpoint tests' shared fixture: a small model's tensors with known contents, split and
// written or read at any layout, a fresh directory per test, and ways to damage a file.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint_test_util.hpp"
#include "io/checkpoint/checkpoint.hpp"

namespace tessera::checkpoint_test {

int rank_of(MPI_Comm comm = MPI_COMM_WORLD);
int size_of(MPI_Comm comm = MPI_COMM_WORLD);

/// One logical tensor of the test model and the dimension along which it is split.
struct TestTensor {
  std::string name;
  std::vector<int64_t> shape;
  int dim;  ///< -1: replicated
};
const std::vector<TestTensor>& test_tensors();

/// Owns the values of the blocks a rank writes or reads.
struct Blocks {
  std::vector<std::vector<float>> storage;
  std::vector<TensorBlock> write;
  std::vector<TensorReadRequest> read;
};

/// The blocks of `parts`-way splits of `tensors` given out round-robin (part p to rank
/// p % size); a replicated tensor is declared on every rank, written by rank 0 only.
Blocks make_blocks(int parts, uint64_t seed,
                   const std::vector<TestTensor>& tensors = test_tensors());

/// Reads the blocks of a `parts`-way split of `tensors` and checks every value bitwise.
void expect_reads_back(const std::filesystem::path& file, int parts, uint64_t seed,
                       const std::vector<TestTensor>& tensors = test_tensors());

/// The UsageError message `action` throws, or "" if it did not throw one.
std::string usage_error_of(const std::function<void()>& action);

/// Flips bytes in the middle of a contiguous dataset's data, found through H5Dget_offset.
void flip_bytes(const std::filesystem::path& file, const std::string& dataset);

class CheckpointTest : public testing::Test {
 protected:
  void SetUp() override { directory_ = shared_temp_dir(MPI_COMM_WORLD); }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_of() == 0) std::filesystem::remove_all(directory_);
  }
  std::filesystem::path write_test_file(const std::string& name, uint64_t seed = 1) {
    Blocks blocks = make_blocks(4, seed);
    const auto file = directory_ / name;
    write_checkpoint(MPI_COMM_WORLD, file, blocks.write, {{"step", 42}, {"seed", seed}});
    return file;
  }
  /// Runs `action` on rank 0 only, with the file closed everywhere, then waits for it.
  template <typename Action>
  void on_rank0(Action action) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_of() == 0) action();
    MPI_Barrier(MPI_COMM_WORLD);
  }
  std::filesystem::path directory_;
};

}  // namespace tessera::checkpoint_test
