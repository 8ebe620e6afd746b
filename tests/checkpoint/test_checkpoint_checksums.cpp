// Checkpoint checksums (format version 2): the position hash that blocks compute apart, its
// verification from what each rank reads (tiled, replicated and partial reads), the fallback of
// load_latest on damaged data only, and version 1 files (FNV-1a 64) that still read.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>

#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "checkpoint_fixture.hpp"
#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera {
namespace {

using namespace checkpoint_test;
using checkpoint_detail::block_position_hash;

std::vector<float> random_floats(std::size_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(count);
  for (float& value : values) value = normal(generator);
  return values;
}

/// The block [offset, offset + shape) of a row-major [4, 5, 6] tensor, copied out.
std::vector<float> copy_block(const std::vector<float>& whole, const std::vector<int64_t>& offset,
                              const std::vector<int64_t>& shape) {
  std::vector<float> block;
  for (int64_t i = 0; i < shape[0]; ++i) {
    for (int64_t j = 0; j < shape[1]; ++j) {
      for (int64_t k = 0; k < shape[2]; ++k) {
        block.push_back(whole[static_cast<std::size_t>(((offset[0] + i) * 5 + offset[1] + j) * 6 +
                                                       offset[2] + k)]);
      }
    }
  }
  return block;
}

TEST(PositionHash, BlocksOfAnyPartitionSumToTheWhole) {
  const std::vector<int64_t> shape{4, 5, 6};
  const std::vector<float> whole = random_floats(120, 7);
  const uint64_t expected = position_hash(whole, 0);
  // Uneven cuts along every dimension: 2 x 3 x 2 blocks of different shapes, in any order.
  const std::vector<std::vector<int64_t>> cuts{{0, 1, 4}, {0, 2, 3, 5}, {0, 5, 6}};
  uint64_t sum = 0;
  for (std::size_t a = 0; a + 1 < cuts[0].size(); ++a) {
    for (std::size_t b = 0; b + 1 < cuts[1].size(); ++b) {
      for (std::size_t c = 0; c + 1 < cuts[2].size(); ++c) {
        const std::vector<int64_t> offset{cuts[0][a], cuts[1][b], cuts[2][c]};
        const std::vector<int64_t> extent{cuts[0][a + 1] - cuts[0][a], cuts[1][b + 1] - cuts[1][b],
                                          cuts[2][c + 1] - cuts[2][c]};
        const auto block = copy_block(whole, offset, extent);
        sum += block_position_hash(shape, extent, offset, block.data());
      }
    }
  }
  EXPECT_EQ(sum, expected);
  // Runs hashed apart and summed are the whole too.
  EXPECT_EQ(
      position_hash(std::span(whole).subspan(37), 37, position_hash(std::span(whole).first(37), 0)),
      expected);
}

TEST(PositionHash, ElementsAreKeyedByTheirPlace) {
  std::vector<float> values = random_floats(64, 3);
  const uint64_t original = position_hash(values, 0);
  std::swap(values[5], values[40]);  // the same multiset of values in other places
  EXPECT_NE(position_hash(values, 0), original);
  std::swap(values[5], values[40]);
  EXPECT_NE(position_hash(values, 1), original);  // the same run at another offset
  uint32_t bits = 0;
  std::memcpy(&bits, &values[9], sizeof(bits));
  bits ^= 1u << 30;  // one flipped bit of one element
  std::memcpy(&values[9], &bits, sizeof(bits));
  EXPECT_NE(position_hash(values, 0), original);
}

/// The CheckpointDamaged message `action` throws, or "" if it throws none (another UsageError
/// fails the test).
std::string damage_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const CheckpointDamaged& error) {
    return error.what();
  } catch (const UsageError& error) {
    ADD_FAILURE() << "a UsageError that is not CheckpointDamaged: " << error.what();
  }
  return "";
}

TEST_F(CheckpointTest, DamagedDataIsDetectedAtEverySplitFromWhatWasRead) {
  const auto file = write_test_file("damaged.h5", 4);
  const std::string name = "model/layers/0/attn/q/weight";
  on_rank0([&] { flip_bytes(file, "/" + name); });
  for (int parts : {1, 2, 4}) {
    const auto message = damage_of([&] { expect_reads_back(file, parts, 4); });
    EXPECT_NE(message.find("/" + name), std::string::npos) << parts << " parts: " << message;
  }
  EXPECT_NE(damage_of([&] { verify_checkpoint(MPI_COMM_WORLD, file); }), "");
}

TEST_F(CheckpointTest, DamagedReplicatedTensorIsDetectedWhenEveryRankReadsIt) {
  // Every rank reads the whole tensor (dp replicas): the copies count once.
  const auto file = write_test_file("replicated_damage.h5", 6);
  const TestTensor& norm = test_tensors()[2];
  std::vector<float> whole(6, 0.0f);
  const std::vector<TensorReadRequest> request{
      {norm.name, norm.shape, norm.shape, {0}, whole.data()}};
  read_checkpoint(MPI_COMM_WORLD, file, request);
  EXPECT_EQ(whole, block_values(norm.name, 6, norm.shape, {norm.shape, {0}}));
  on_rank0([&] { flip_bytes(file, "/" + norm.name); });
  const auto message = damage_of([&] { read_checkpoint(MPI_COMM_WORLD, file, request); });
  EXPECT_NE(message.find("/" + norm.name), std::string::npos) << message;
}

TEST_F(CheckpointTest, RepeatedBlocksAreFilledFromTheRankThatReadThem) {
  // Each rank asks for the whole tensor twice and for one row (dp replicas and a rank that wants
  // one block twice): only the first request of each block reads the file, every other one is
  // a copy sent by that rank or copied on it.
  const auto file = write_test_file("repeated.h5", 5);
  const TestTensor& out = test_tensors()[1];
  const int64_t columns = out.shape[1];
  const int64_t row_index = checkpoint_detail::comm_rank(MPI_COMM_WORLD) % out.shape[0];
  std::vector<float> first(static_cast<std::size_t>(out.shape[0] * columns), 0.0f);
  std::vector<float> second(first.size(), 0.0f);
  std::vector<float> row(static_cast<std::size_t>(columns), 0.0f);
  read_checkpoint(MPI_COMM_WORLD, file,
                  {{out.name, out.shape, out.shape, {0, 0}, first.data()},
                   {out.name, out.shape, {1, columns}, {row_index, 0}, row.data()},
                   {out.name, out.shape, out.shape, {0, 0}, second.data()}});
  const auto whole = block_values(out.name, 5, out.shape, {out.shape, {0, 0}});
  EXPECT_EQ(first, whole);
  EXPECT_EQ(second, whole);
  EXPECT_EQ(row, block_values(out.name, 5, out.shape, {{1, columns}, {row_index, 0}}));
}

TEST_F(CheckpointTest, PartialReadIsVerifiedWhole) {
  // Only the first row of [6, 8] is read; the flipped byte lies in the middle of the data, so
  // only a check of the whole tensor finds it.
  const auto file = write_test_file("partial.h5", 8);
  const TestTensor& out = test_tensors()[1];
  std::vector<float> row(8, 0.0f);
  const std::vector<TensorReadRequest> request{{out.name, out.shape, {1, 8}, {0, 0}, row.data()}};
  read_checkpoint(MPI_COMM_WORLD, file, request);
  EXPECT_EQ(row, block_values(out.name, 8, out.shape, {{1, 8}, {0, 0}}));
  on_rank0([&] { flip_bytes(file, "/" + out.name); });
  const auto message = damage_of([&] { read_checkpoint(MPI_COMM_WORLD, file, request); });
  EXPECT_NE(message.find("/" + out.name), std::string::npos) << message;
}

TEST_F(CheckpointTest, LoadLatestFallsBackOnDamageButNotOnAMismatch) {
  CheckpointDirectory directory(MPI_COMM_WORLD, directory_ / "run", 3);
  for (int64_t step : {10, 20}) {
    Blocks blocks = make_blocks(2, static_cast<uint64_t>(step));
    directory.save(step, blocks.write, {{"step", step}});
  }
  on_rank0([&] { flip_bytes(directory.path_for(20), "/model/layers/0/attn/out/weight"); });
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& warning) { warnings.push_back(warning); };
  Blocks blocks = make_blocks(2, 0);
  const auto loaded = directory.load_latest(
      [&](const CheckpointDirectory::Entry& entry) {
        read_checkpoint(MPI_COMM_WORLD, entry.path, blocks.read);
      },
      warn);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->step, 10);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("step_000000020.h5"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("falling back"), std::string::npos) << warnings[0];
  for (const TensorReadRequest& request : blocks.read) {
    const auto expected = block_values(request.name, 10, request.global_shape,
                                       {request.local_shape, request.global_offset});
    EXPECT_EQ(0, std::memcmp(expected.data(), request.data, expected.size() * sizeof(float)))
        << request.name;
  }

  // A model that does not match the files would match no older one either: no fallback.
  warnings.clear();
  std::vector<float> values(64, 0.0f);
  const auto mismatch = usage_error_of([&] {
    directory.load_latest(
        [&](const CheckpointDirectory::Entry& entry) {
          read_checkpoint(MPI_COMM_WORLD, entry.path,
                          {{"model/layers/0/norm/weight", {7}, {7}, {0}, values.data()}});
        },
        warn);
  });
  EXPECT_NE(mismatch.find("[7]"), std::string::npos) << mismatch;
  EXPECT_TRUE(warnings.empty()) << warnings.front();
}

/// Rewrites a version 2 file as version 1 wrote it: the root version attribute 1 and, on every
/// dataset, "fnv1a64" (FNV-1a 64 of its bytes in row-major order) instead of "position_hash64".
void make_version(const std::filesystem::path& file, int version) {
  const hid_t file_id = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file_id, 0);
  const hid_t version_attribute = H5Aopen(file_id, "tessera_format_version", H5P_DEFAULT);
  ASSERT_GE(H5Awrite(version_attribute, H5T_NATIVE_INT, &version), 0);
  H5Aclose(version_attribute);
  if (version == 1) {
    for (const TestTensor& tensor : test_tensors()) {
      const hid_t dataset = H5Dopen2(file_id, tensor.name.c_str(), H5P_DEFAULT);
      ASSERT_GE(dataset, 0) << tensor.name;
      const hid_t space = H5Dget_space(dataset);
      std::vector<float> values(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
      H5Sclose(space);
      ASSERT_GE(H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
                0);
      const uint64_t hash = fnv1a64(std::as_bytes(std::span(values)));
      ASSERT_GE(H5Adelete(dataset, "position_hash64"), 0);
      const hid_t scalar = H5Screate(H5S_SCALAR);
      const hid_t attribute =
          H5Acreate2(dataset, "fnv1a64", H5T_STD_U64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
      ASSERT_GE(H5Awrite(attribute, H5T_NATIVE_UINT64, &hash), 0);
      H5Aclose(attribute);
      H5Sclose(scalar);
      H5Dclose(dataset);
    }
  }
  H5Fclose(file_id);
}

TEST_F(CheckpointTest, VersionOneFilesStillReadAndVerify) {
  const auto file = write_test_file("version1.h5", 12);
  on_rank0([&] { make_version(file, 1); });
  expect_reads_back(file, 4, 12);
  expect_reads_back(file, 1, 12);
  EXPECT_NO_THROW(verify_checkpoint(MPI_COMM_WORLD, file));
  on_rank0([&] { flip_bytes(file, "/model/layers/0/attn/out/weight"); });
  EXPECT_NE(damage_of([&] { expect_reads_back(file, 2, 12); }), "");
  EXPECT_NE(damage_of([&] { verify_checkpoint(MPI_COMM_WORLD, file); }), "");
}

TEST_F(CheckpointTest, NewerFormatVersionIsRefusedWithTheFix) {
  const auto file = write_test_file("version3.h5", 13);
  on_rank0([&] { make_version(file, 3); });
  const auto message = usage_error_of([&] { expect_reads_back(file, 2, 13); });
  EXPECT_NE(message.find("versions 1 to 2"), std::string::npos) << message;
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
}

}  // namespace
}  // namespace tessera
