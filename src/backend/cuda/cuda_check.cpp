#include "backend/cuda/cuda_check.hpp"

#include <mpi.h>

#include <string>

#include "core/error.hpp"

namespace tessera::cuda {
namespace {

/// "rank 3 of 8: " once MPI runs, so that a message from one of many ranks says which one
/// failed; empty in a process without MPI (unit tests, tools).
std::string rank_prefix() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return "";
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return "rank " + std::to_string(rank) + " of " + std::to_string(size) + ": ";
}

[[noreturn]] void throw_failure(const char* library, const char* statement, const char* file,
                                int line, const std::string& what) {
  throw InternalError(rank_prefix() + library + " call failed: " + statement + " at " + file + ":" +
                      std::to_string(line) + ": " + what);
}

}  // namespace

void check_status(cudaError_t status, const char* statement, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw_failure("CUDA", statement, file, line,
                std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")");
}

void check_status(cublasStatus_t status, const char* statement, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw_failure(
      "cuBLAS", statement, file, line,
      std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")");
}

void check_status(cudnnStatus_t status, const char* statement, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw_failure("cuDNN", statement, file, line, cudnnGetErrorString(status));
}

void check_status(ncclResult_t status, const char* statement, const char* file, int line) {
  if (status == ncclSuccess) return;
  // ncclGetLastError holds the detail (which peer, which transport) when NCCL recorded one.
  const char* detail = ncclGetLastError(nullptr);
  throw_failure("NCCL", statement, file, line,
                std::string(ncclGetErrorString(status)) +
                    (detail && *detail ? std::string(": ") + detail : std::string()));
}

}  // namespace tessera::cuda
