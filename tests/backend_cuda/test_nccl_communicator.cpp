// CUDA code under MPI, in its own binary because it starts MPI (the conformance binary runs on GPU
// machines without an MPI installation): the check macro naming the rank, and the NCCL
// communicator on one GPU -- bootstrap over MPI, every collective on a one-rank group (where
// each must return its input) and its ordering against the backend's compute stream. Two-rank
// exchanges need two GPUs; the multi-GPU run of the trainer covers them.
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "core/error.hpp"
#include "cuda_backends.hpp"
#include "parallel/nccl_communicator.hpp"

namespace tessera::test {
namespace {

/// MPI lives as long as the test program: initialised before the first test and finalised after
/// the last, whether ctest runs one test per process or the device script runs them all at once
/// (MPI cannot be initialised again after MPI_Finalize).
class MpiForTheWholeProgram : public ::testing::Environment {
 public:
  void SetUp() override { MPI_Init(nullptr, nullptr); }
  void TearDown() override { MPI_Finalize(); }
};
// gtest takes ownership; registration at static-initialisation time, like the TEST macros.
[[maybe_unused]] ::testing::Environment* const kMpi =
    ::testing::AddGlobalTestEnvironment(new MpiForTheWholeProgram);

TEST(CudaCheckUnderMpi, NamesTheRank) {
  try {
    TESSERA_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "TESSERA_CUDA_CHECK did not throw";
  } catch (const InternalError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("rank 0 of 1: CUDA call failed", 0), 0u)
        << error.what();
  }
}

using NcclOneRank = DeviceConformance;

std::vector<float> device_values(Backend& backend, const float* device, std::size_t count) {
  std::vector<float> host(count);
  backend.copy_to_host(host.data(), device, count);
  return host;
}

TEST_F(NcclOneRank, CollectivesOfOneRankReturnTheirInput) {
  Backend& backend = device_backend();
  NcclCommunicator nccl(duplicate(MPI_COMM_SELF), cuda_compute_stream(backend));
  ASSERT_EQ(nccl.size(), 1);
  const std::vector<float> values = random_floats(4099, 7);
  float* data = backend.allocate(values.size());
  float* gathered = backend.allocate(values.size());
  backend.copy_from_host(data, values.data(), values.size());
  // Queued on the compute stream right before the collective: the collective must see it.
  backend.scale(data, 2.0f, values.size());
  nccl.all_reduce_sum(data, values.size());
  nccl.all_reduce_max(data, values.size());
  nccl.broadcast(data, values.size(), 0);
  nccl.all_gather(data, gathered, values.size());
  nccl.reduce_scatter_sum_async(gathered, data, values.size()).wait();
  std::vector<float> expected = values;
  for (float& x : expected) x *= 2.0f;
  expect_bitwise_equal(device_values(backend, data, values.size()), expected, "collectives");
  EXPECT_EQ(nccl.all_reduce_sum_double(1.5), 1.5);
  nccl.barrier();
  backend.release(gathered);
  backend.release(data);
}

}  // namespace
}  // namespace tessera::test
