#include "cuda_backends.hpp"

#include <memory>

#include "backend/cuda/cuda_backend.hpp"

namespace tessera::test {
namespace {

struct CudaBackends {
  std::unique_ptr<Backend> fp32 = make_cuda_backend();
  std::unique_ptr<Backend> bf16 = make_cuda_backend(GemmPrecision::bf16);
  std::unique_ptr<Backend> bf16_native =
      make_cuda_backend(GemmPrecision::bf16, CudaAttention::native);
};

CudaBackends& backends() {
  // Never destroyed: at exit the CUDA runtime may already be torn down when static destructors
  // run, and releasing a cuBLAS handle then is not safe. The process exit frees everything.
  static CudaBackends* instance = new CudaBackends;
  return *instance;
}

}  // namespace

Backend& device_backend() { return *backends().fp32; }
Backend& cuda_bf16_backend() { return *backends().bf16; }
Backend& cuda_bf16_native_backend() { return *backends().bf16_native; }

std::string device_unavailable_reason() { return cuda_device_available() ? "" : "no GPU"; }

}  // namespace tessera::test
