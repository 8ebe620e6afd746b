#include "backend/cuda/cuda_check.hpp"

#include <string>

#include "core/error.hpp"

namespace tessera::cuda {
namespace {

[[noreturn]] void throw_failure(const char* statement, const char* file, int line,
                                const std::string& what) {
  // TODO(parallel): prefix the MPI rank once the backend is handed a parallel context.
  throw InternalError(std::string("CUDA call failed: ") + statement + " at " + file + ":" +
                      std::to_string(line) + ": " + what);
}

}  // namespace

void check_status(cudaError_t status, const char* statement, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw_failure(statement, file, line,
                std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")");
}

void check_status(cublasStatus_t status, const char* statement, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw_failure(
      statement, file, line,
      std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")");
}

}  // namespace tessera::cuda
