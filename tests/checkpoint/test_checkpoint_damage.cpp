// Damaged and forged checkpoint files, at 1, 2 and 4 ranks: corrupt object headers, metadata
// that is not JSON and datasets whose shapes or storage lie are one UsageError on every rank (never
// an HDF5 failure on some ranks, a huge allocation or minutes of hashing), and a checkpoint
// directory falls back to the older file beside them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint_fixture.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"

namespace tessera {
namespace {

using namespace checkpoint_test;

/// Far below what reading or hashing a forged size would take, and what any rank waiting in a
/// collective for a failed one would.
constexpr double kPromptly = 20.0;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Flips 8 bytes of the object header of `object` (a group or dataset), `skip` bytes past its
/// start.
void flip_header_bytes(const std::filesystem::path& file, const std::string& object, int skip) {
  const hid_t file_id = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file_id, 0);
  H5O_info_t info;
  ASSERT_GE(H5Oget_info_by_name2(file_id, object.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT), 0);
  H5Fclose(file_id);
  const int fd = open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char bytes[8];
  const auto at = static_cast<off_t>(info.addr + static_cast<haddr_t>(skip));
  ASSERT_EQ(8, pread(fd, bytes, 8, at));
  for (unsigned char& byte : bytes) byte ^= 0xA5;
  ASSERT_EQ(8, pwrite(fd, bytes, 8, at));
  close(fd);
}

/// Creates `name` in `file` as a float32 dataset of `shape` whose data is never written (no
/// storage is allocated: it reads back as fill values), replacing a dataset of that name.
void forge_unallocated(const std::filesystem::path& file, const std::string& name,
                       const std::vector<hsize_t>& shape) {
  const hid_t file_id = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file_id, 0);
  if (H5Lexists(file_id, name.c_str(), H5P_DEFAULT) > 0) {
    ASSERT_GE(H5Ldelete(file_id, name.c_str(), H5P_DEFAULT), 0);
  }
  const hid_t space = H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr);
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_alloc_time(properties, H5D_ALLOC_TIME_LATE);
  const hid_t dataset = H5Dcreate2(file_id, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                   properties, H5P_DEFAULT);
  ASSERT_GE(dataset, 0);
  H5Dclose(dataset);
  H5Pclose(properties);
  H5Sclose(space);
  H5Fclose(file_id);
}

/// Replaces the root's metadata attribute with text that is not JSON (its start, cut off).
void cut_metadata(const std::filesystem::path& file) {
  const hid_t file_id = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file_id, 0);
  ASSERT_GE(H5Adelete(file_id, "metadata"), 0);
  const std::string cut = "{\"step\": 2";
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, cut.size());
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attribute = H5Acreate2(file_id, "metadata", type, space, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(attribute, 0);
  EXPECT_GE(H5Awrite(attribute, type, cut.data()), 0);
  H5Aclose(attribute);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(file_id);
}

class CheckpointDamage : public CheckpointTest {
 protected:
  /// A checkpoint directory with steps 10 and 20; returns 20's file.
  std::filesystem::path two_checkpoints(CheckpointDirectory& directory) {
    for (int64_t step : {10, 20}) {
      Blocks blocks = make_blocks(2, static_cast<uint64_t>(step));
      directory.save(step, blocks.write, {{"step", step}});
    }
    return directory.path_for(20);
  }

  /// Damages step 20 with `damage` (on rank 0), then expects verify_checkpoint to refuse it with
  /// a message containing `expected` on every rank, and the directory to fall back to step 10.
  template <class Damage>
  void expect_fallback(const std::string& name, Damage damage, const std::string& expected) {
    CheckpointDirectory directory(MPI_COMM_WORLD, directory_ / name, 3);
    const auto damaged = two_checkpoints(directory);
    on_rank0([&] { damage(damaged); });
    const auto start = std::chrono::steady_clock::now();
    const std::string refused = usage_error_of([&] { verify_checkpoint(MPI_COMM_WORLD, damaged); });
    EXPECT_NE(refused.find(damaged.string()), std::string::npos) << refused;
    EXPECT_NE(refused.find(expected), std::string::npos) << refused;
    std::vector<std::string> warnings;
    const auto valid = directory.latest_valid([&](const std::string& w) { warnings.push_back(w); });
    ASSERT_TRUE(valid.has_value());
    EXPECT_EQ(valid->step, 10);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("step_000000020.h5"), std::string::npos) << warnings[0];
    EXPECT_LT(seconds_since(start), kPromptly);
    expect_reads_back(valid->path, 2, 10);
  }
};

TEST_F(CheckpointDamage, CorruptGroupHeaderBeforeTheFirstDatasetFallsBack) {
  expect_fallback(
      "group-header", [](const auto& file) { flip_header_bytes(file, "/model/layers/0", 0); },
      "damaged");
}

TEST_F(CheckpointDamage, CorruptDatasetHeaderFallsBack) {
  expect_fallback(
      "dataset-header",
      [](const auto& file) { flip_header_bytes(file, "/model/layers/0/attn/out/weight", 0); },
      "damaged");
}

TEST_F(CheckpointDamage, MetadataThatIsNotJsonFallsBack) {
  expect_fallback("metadata", cut_metadata, "metadata is not valid JSON");
}

TEST_F(CheckpointDamage, ExtraDatasetOfAForgedHugeShapeFallsBackUnread) {
  // [1, 2^33] floats would be a 32 GiB row; [1, 2^32] a 16 GiB one.
  for (hsize_t columns : {hsize_t{1} << 33, hsize_t{1} << 32}) {
    expect_fallback(
        "extra-" + std::to_string(columns),
        [&](const auto& file) {
          forge_unallocated(file, "/forged", {1, columns});
        },
        "dataset /forged holds 0 bytes");
  }
}

TEST_F(CheckpointDamage, TensorReplacedByAnUnallocatedOneOfAnyShapeIsRefusedPromptly) {
  const auto file = write_test_file("replaced.h5", 5);
  const std::string name = "/model/layers/0/attn/q/weight";
  // A shape beyond any tensor: refused from the shape alone, whether read for a model or
  // verified whole.
  on_rank0([&] { forge_unallocated(file, name, {hsize_t{1} << 40, 64}); });
  auto start = std::chrono::steady_clock::now();
  const std::string read = usage_error_of([&] { expect_reads_back(file, 2, 5); });
  EXPECT_NE(read.find(name + " has shape [1099511627776, 64] but the model expects [8, 6]"),
            std::string::npos)
      << read;
  const std::string verified = usage_error_of([&] { verify_checkpoint(MPI_COMM_WORLD, file); });
  EXPECT_NE(verified.find(name + " is not a float32 tensor"), std::string::npos) << verified;
  EXPECT_LT(seconds_since(start), kPromptly);

  // The model's own shape, but no data: refused before it is hashed or read.
  on_rank0([&] { forge_unallocated(file, name, {8, 6}); });
  start = std::chrono::steady_clock::now();
  const std::string empty = usage_error_of([&] { expect_reads_back(file, 2, 5); });
  EXPECT_NE(
      empty.find("dataset " + name + " holds 0 bytes of data where its shape [8, 6] needs 192"),
      std::string::npos)
      << empty;
  EXPECT_LT(seconds_since(start), kPromptly);
}

}  // namespace
}  // namespace tessera
