// One check macro for CUDA runtime and cuBLAS status codes.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

namespace tessera::cuda {

/// Throw InternalError naming the failed statement, its place and the library's own message.
void check_status(cudaError_t status, const char* statement, const char* file, int line);
void check_status(cublasStatus_t status, const char* statement, const char* file, int line);

}  // namespace tessera::cuda

/// Evaluates `statement` (a CUDA runtime or cuBLAS call) once; on failure throws
/// tessera::InternalError with the statement, file:line and the error's name and description.
#define TESSERA_CUDA_CHECK(statement) \
  ::tessera::cuda::check_status((statement), #statement, __FILE__, __LINE__)
