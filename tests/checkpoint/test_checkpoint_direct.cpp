// Checkpoints whose blocks are large enough to go past the page cache (O_DIRECT): ranges of
// rows whose ends share pages with another rank's, and column blocks that the writers regroup
// into rows (RowExchange) before writing; on the test directory's disk and on a file system
// that refuses O_DIRECT (tmpfs), written at one split and read back bitwise at others.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint_fixture.hpp"
#include "io/checkpoint/checkpoint.hpp"

namespace tessera {
namespace {

using namespace checkpoint_test;

/// Rows of 12 KB split into 1000-column pieces; a 1-D tensor whose ranges end mid-page; a
/// middle dimension split; all of them far over the 64 KiB from which runs go direct.
const std::vector<TestTensor>& large_tensors() {
  static const std::vector<TestTensor> tensors = {
      {"large/columns", {257, 3000}, 1},
      {"large/rows", {100008}, 0},
      {"large/middle", {3, 48, 1001}, 1},
  };
  return tensors;
}

void expect_round_trip(const std::filesystem::path& directory) {
  constexpr uint64_t kSeed = 11;
  Blocks blocks = make_blocks(3, kSeed, large_tensors());
  const auto file = directory / "large.h5";
  write_checkpoint(MPI_COMM_WORLD, file, blocks.write, {{"step", 1}});
  for (const int parts : {1, 2, 3, 4}) expect_reads_back(file, parts, kSeed, large_tensors());
  // HDF5's own reads of every dataset agree with the checksums of the buffers written.
  EXPECT_NO_THROW(verify_checkpoint(MPI_COMM_WORLD, file));
}

TEST_F(CheckpointTest, LargeBlocksRoundTripPastThePageCache) { expect_round_trip(directory_); }

TEST_F(CheckpointTest, LargeDamagedBlocksAreDetectedFromTheBytesRead) {
  // A restore sums the checksums of the pieces as they land from the file (on the staging
  // workers), whether a rank reads its own block or rows dealt to it.
  constexpr uint64_t kSeed = 12;
  Blocks blocks = make_blocks(3, kSeed, large_tensors());
  for (const TestTensor& tensor : large_tensors()) {
    const auto file = directory_ / "damaged.h5";
    write_checkpoint(MPI_COMM_WORLD, file, blocks.write, {{"step", 1}});
    on_rank0([&] { flip_bytes(file, "/" + tensor.name); });
    for (const int parts : {1, 2, 3, 4}) {
      const std::string message =
          usage_error_of([&] { expect_reads_back(file, parts, kSeed, large_tensors()); });
      EXPECT_NE(message.find("/" + tensor.name + " fails its checksum"), std::string::npos)
          << parts << " parts: " << message;
    }
  }
}

TEST(CheckpointOnTmpfs, LargeBlocksRoundTripThroughThePageCache) {
  int usable = access("/dev/shm", W_OK) == 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &usable, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (usable == 0) GTEST_SKIP() << "no writable /dev/shm";
  const std::filesystem::path directory = shared_temp_dir(MPI_COMM_WORLD, "/dev/shm");
  expect_round_trip(directory);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_of() == 0) std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace tessera
