// One check macro for every NVIDIA library tessera calls: the CUDA runtime, cuBLAS, cuDNN and
// NCCL. A failure names the statement, file:line, the library's own message and the MPI rank, and
// throws InternalError; `tessera` turns that into a message and an abort of the whole job, so no
// other rank waits forever in a collective.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cudnn_graph.h>
#include <nccl.h>

namespace tessera::cuda {

/// Throw InternalError naming the failed statement, its place, the rank and the library's message.
void check_status(cudaError_t status, const char* statement, const char* file, int line);
void check_status(cublasStatus_t status, const char* statement, const char* file, int line);
void check_status(cudnnStatus_t status, const char* statement, const char* file, int line);
void check_status(ncclResult_t status, const char* statement, const char* file, int line);

}  // namespace tessera::cuda

/// Evaluates `statement` (a CUDA runtime, cuBLAS, cuDNN or NCCL call) once; on failure throws
/// tessera::InternalError with the rank, the statement, file:line and the error's description.
#define TESSERA_CUDA_CHECK(statement) \
  ::tessera::cuda::check_status((statement), #statement, __FILE__, __LINE__)
