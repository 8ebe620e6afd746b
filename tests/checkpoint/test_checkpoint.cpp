// Checkpoints under MPI at 1, 2 and 4 ranks: round trips across splits, replicated tensors,
// and every way a file can be wrong (shape, corrupt bytes, truncation) giving one UsageError.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint_fixture.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"

namespace tessera {
namespace {

using namespace checkpoint_test;

TEST_F(CheckpointTest, WrittenFourWaysReadsBackAtEverySplit) {
  const auto file = write_test_file("round_trip.h5", 3);
  expect_reads_back(file, 4, 3);
  expect_reads_back(file, 2, 3);
  expect_reads_back(file, 1, 3);
  EXPECT_EQ(read_checkpoint_metadata(MPI_COMM_WORLD, file)["step"], 42);
  EXPECT_NO_THROW(verify_checkpoint(MPI_COMM_WORLD, file));
  // Nothing but the final file is left behind.
  EXPECT_EQ(1, std::distance(std::filesystem::directory_iterator(directory_),
                             std::filesystem::directory_iterator()));
}

TEST_F(CheckpointTest, MetadataOverSixtyFourKibibytesRoundTrips) {
  // Attributes over 64 KiB need the 1.8 file format's dense attribute storage.
  Blocks blocks = make_blocks(2, 1);
  const nlohmann::json metadata = {{"step", 7}, {"config", std::string(200000, 'x')}};
  const auto file = directory_ / "large_metadata.h5";
  write_checkpoint(MPI_COMM_WORLD, file, blocks.write, metadata);
  EXPECT_EQ(read_checkpoint_metadata(MPI_COMM_WORLD, file), metadata);
}

TEST_F(CheckpointTest, ReplicatedTensorIsWrittenByItsWriterOnly) {
  // Non-writers hold -7 (see make_blocks); the file must hold rank 0's values.
  const auto file = write_test_file("replicated.h5", 5);
  const TestTensor& norm = test_tensors()[2];
  std::vector<float> whole(6, 0.0f);
  read_checkpoint(MPI_COMM_WORLD, file, {{norm.name, norm.shape, norm.shape, {0}, whole.data()}});
  EXPECT_EQ(whole, block_values(norm.name, 5, norm.shape, {norm.shape, {0}}));
}

TEST_F(CheckpointTest, WriterBlocksMustCoverEachTensorOnce) {
  std::vector<float> values(6, 1.0f);
  const std::vector<int64_t> shape{6};
  const auto none = usage_error_of([&] {
    write_checkpoint(MPI_COMM_WORLD, directory_ / "none.h5",
                     {{"model/norm", shape, shape, {0}, values.data(), false}}, {});
  });
  EXPECT_NE(none.find("model/norm"), std::string::npos) << none;
  if (size_of() > 1) {
    const auto twice = usage_error_of([&] {
      write_checkpoint(MPI_COMM_WORLD, directory_ / "twice.h5",
                       {{"model/norm", shape, shape, {0}, values.data(), true}}, {});
    });
    EXPECT_NE(twice.find("writer"), std::string::npos) << twice;
  }
  EXPECT_FALSE(std::filesystem::exists(directory_ / "none.h5"));
}

TEST_F(CheckpointTest, ShapeMismatchNamesTheTensor) {
  const auto file = write_test_file("shapes.h5");
  std::vector<float> values(64, 0.0f);
  const std::string name = "model/layers/0/attn/q/weight";
  const auto message = usage_error_of([&] {
    read_checkpoint(MPI_COMM_WORLD, file, {{name, {6, 8}, {6, 8}, {0, 0}, values.data()}});
  });
  EXPECT_NE(message.find(name), std::string::npos) << message;
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  EXPECT_NE(message.find("[8, 6]"), std::string::npos) << message;
  const auto missing = usage_error_of([&] {
    read_checkpoint(MPI_COMM_WORLD, file, {{"model/nope/weight", {2}, {2}, {0}, values.data()}});
  });
  EXPECT_NE(missing.find("model/nope/weight"), std::string::npos) << missing;
  const auto outside = usage_error_of([&] {
    read_checkpoint(MPI_COMM_WORLD, file, {{name, {8, 6}, {8, 6}, {1, 0}, values.data()}});
  });
  EXPECT_NE(outside.find("does not fit"), std::string::npos) << outside;
}

TEST_F(CheckpointTest, FlippedBytesNameTheDataset) {
  const auto file = write_test_file("corrupt.h5", 9);
  const std::string name = "model/layers/0/attn/out/weight";
  on_rank0([&] { flip_bytes(file, "/" + name); });
  const auto message = usage_error_of([&] { expect_reads_back(file, 2, 9); });
  EXPECT_NE(message.find("/" + name), std::string::npos) << message;
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  const auto verified = usage_error_of([&] { verify_checkpoint(MPI_COMM_WORLD, file); });
  EXPECT_NE(verified.find("/" + name), std::string::npos) << verified;
  // A reader that does not ask for the corrupt tensor still loads the others.
  const TestTensor& norm = test_tensors()[2];
  std::vector<float> whole(6, 0.0f);
  read_checkpoint(MPI_COMM_WORLD, file, {{norm.name, norm.shape, norm.shape, {0}, whole.data()}});
  EXPECT_EQ(whole, block_values(norm.name, 9, norm.shape, {norm.shape, {0}}));
}

TEST_F(CheckpointTest, TruncatedOrForeignFileIsOneUsageError) {
  const auto file = write_test_file("truncated.h5");
  on_rank0([&] {
    std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
    std::ofstream(directory_ / "text.h5") << "not an HDF5 file\n";
  });
  for (const auto& path : {file, directory_ / "text.h5", directory_ / "missing.h5"}) {
    const auto message = usage_error_of([&] { expect_reads_back(path, 2, 1); });
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    const auto metadata = usage_error_of([&] { read_checkpoint_metadata(MPI_COMM_WORLD, path); });
    EXPECT_NE(metadata.find(path.string()), std::string::npos) << metadata;
  }
}

TEST_F(CheckpointTest, DirectoryKeepsTheLastCheckpointsAndFallsBack) {
  CheckpointDirectory directory(MPI_COMM_WORLD, directory_ / "run", 2);
  for (int64_t step = 10; step <= 50; step += 10) {
    Blocks blocks = make_blocks(2, static_cast<uint64_t>(step));
    const auto path = directory.save(step, blocks.write, {{"step", step}});
    EXPECT_EQ(path.filename(), directory.path_for(step).filename());
    std::ifstream latest(directory_ / "run" / "latest");
    std::string target;
    std::getline(latest, target);
    EXPECT_EQ(target, path.filename().string());
    EXPECT_TRUE(std::filesystem::exists(directory_ / "run" / target));
  }
  const auto entries = directory.list();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].step, 40);
  EXPECT_EQ(entries[1].step, 50);
  EXPECT_EQ(directory.latest_valid()->step, 50);

  on_rank0([&] { flip_bytes(entries[1].path, "/model/layers/0/norm/weight"); });
  std::vector<std::string> warnings;
  const auto valid = directory.latest_valid([&](const std::string& w) { warnings.push_back(w); });
  ASSERT_TRUE(valid.has_value());
  EXPECT_EQ(valid->step, 40);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("step_000000050.h5"), std::string::npos) << warnings[0];
  expect_reads_back(valid->path, 4, 40);

  on_rank0([&] { flip_bytes(entries[0].path, "/model/layers/0/norm/weight"); });
  EXPECT_FALSE(directory.latest_valid().has_value());
}

TEST_F(CheckpointTest, H5pySeesGlobalNamesShapesAndChecksums) {
  const auto file = write_test_file("h5py.h5", 11);
  on_rank0([&] {
    nlohmann::json expected;
    for (const TestTensor& tensor : test_tensors()) expected[tensor.name] = tensor.shape;
    const auto expected_file = directory_ / "expected.json";
    std::ofstream(expected_file) << expected.dump();
    const std::string command = std::string(TESSERA_SYSTEM_PYTHON) + " " + TESSERA_H5PY_SCRIPT +
                                " " + file.string() + " " + expected_file.string();
    EXPECT_EQ(0, std::system(command.c_str())) << command;
  });
}

TEST_F(CheckpointTest, DescribeListsDatasetsShapesAndAttributes) {
  const auto file = write_test_file("describe.h5");
  on_rank0([&] {
    const std::string text = describe_checkpoint(file);
    EXPECT_NE(text.find("/model/layers/0/attn/q/weight  float32 [8, 6]"), std::string::npos)
        << text;
    EXPECT_NE(text.find("@position_hash64 = "), std::string::npos) << text;
    EXPECT_NE(text.find("@tessera_format_version = 2"), std::string::npos) << text;
    EXPECT_NE(text.find("\"step\":42"), std::string::npos) << text;
  });
}

// What a save needs of a directory, tried before a run's first step; the read-only and full
// file systems are tried for real in tests/train/test_unwritable_dirs.sh (they need mounts).
TEST(DirectoryProbe, CreatesTheDirectoryAndLeavesNothingBehind) {
  const auto base = std::filesystem::temp_directory_path() /
                    ("tessera-probe-" + std::to_string(getpid()) + "-" + std::to_string(rank_of()));
  EXPECT_EQ(probe_writable_directory(base / "a" / "b"), std::nullopt);
  EXPECT_TRUE(std::filesystem::is_directory(base / "a" / "b"));
  EXPECT_TRUE(std::filesystem::is_empty(base / "a" / "b"));
  std::ofstream(base / "file") << "x";
  const std::optional<std::string> problem = probe_writable_directory(base / "file" / "c");
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find((base / "file" / "c").string()), std::string::npos) << *problem;
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace tessera
