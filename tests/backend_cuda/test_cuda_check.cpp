// Host-only checks that need no GPU: the error macro and device detection without a driver.
#include <gtest/gtest.h>

#include <string>

#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "core/error.hpp"

namespace tessera::test {
namespace {

TEST(CudaCheck, NamesTheStatementThePlaceAndTheError) {
  try {
    TESSERA_CUDA_CHECK(cudaErrorMemoryAllocation);
    FAIL() << "TESSERA_CUDA_CHECK did not throw";
  } catch (const InternalError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("cudaErrorMemoryAllocation"), std::string::npos) << message;
    EXPECT_NE(message.find("test_cuda_check.cpp:"), std::string::npos) << message;
  }
}

TEST(CudaCheck, CoversCublasStatusCodes) {
  EXPECT_THROW(TESSERA_CUDA_CHECK(CUBLAS_STATUS_NOT_INITIALIZED), InternalError);
  EXPECT_NO_THROW(TESSERA_CUDA_CHECK(CUBLAS_STATUS_SUCCESS));
  EXPECT_NO_THROW(TESSERA_CUDA_CHECK(cudaSuccess));
}

TEST(CudaCheck, CoversCudnnAndNcclStatusCodes) {
  try {
    TESSERA_CUDA_CHECK(CUDNN_STATUS_BAD_PARAM);
    FAIL() << "TESSERA_CUDA_CHECK did not throw for a cuDNN status";
  } catch (const InternalError& error) {
    EXPECT_NE(std::string(error.what()).find("cuDNN call failed"), std::string::npos);
  }
  try {
    TESSERA_CUDA_CHECK(ncclInvalidArgument);
    FAIL() << "TESSERA_CUDA_CHECK did not throw for an NCCL status";
  } catch (const InternalError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("NCCL call failed: ncclInvalidArgument"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(TESSERA_CUDA_CHECK(CUDNN_STATUS_SUCCESS));
  EXPECT_NO_THROW(TESSERA_CUDA_CHECK(ncclSuccess));
}

TEST(CudaCheck, DeviceDetectionNeverFails) {
  // With or without a driver and device: an answer, not a crash or an exception.
  const bool available = cuda_device_available();
  std::cout << "[ info  ] cuda_device_available() = " << available << "\n";
  if (!available) {
    EXPECT_THROW(make_cuda_backend(), UsageError);
  }
}

}  // namespace
}  // namespace tessera::test
