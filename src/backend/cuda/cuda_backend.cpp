// Device selection, memory, copies, scratch and the factory of the CUDA backend.
#include "backend/cuda/cuda_backend.hpp"

#include <cublas_v2.h>

#include <fstream>
#include <regex>
#include <string>

#include "backend/cuda/cuda_backend_impl.hpp"
#include "backend/cuda/cuda_check.hpp"
#include "backend/cuda/cudnn_attention.hpp"
#include "backend/cuda/lt_matmul.hpp"
#include "core/error.hpp"

namespace tessera::cuda {

int blocks_for(std::size_t count, int threads) {
  const std::size_t blocks = (count + static_cast<std::size_t>(threads) - 1) / threads;
  return blocks == 0 ? 1 : static_cast<int>(blocks);
}

CudaBackend::CudaBackend(GemmPrecision precision, CudaAttention attention) {
  TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  TESSERA_CUDA_CHECK(cublasCreate(&cublas_));
  TESSERA_CUDA_CHECK(cublasSetStream(cublas_, stream_));
  // FP32 compute without TF32, so results stay within a few ulps of the CPU backend.
  TESSERA_CUDA_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  error_flag_ = static_cast<int*>(allocate_zeroed(sizeof(int)));
  if (precision == GemmPrecision::bf16) {
    lt_ = std::make_unique<LtMatmul>(stream_);
    ledger_.set(lt_.get(), lt_->workspace_bytes());
    if (attention == CudaAttention::cudnn)
      cudnn_attention_ = std::make_unique<CudnnAttention>(stream_);
  }
}

CudaBackend::~CudaBackend() {
  // Destructors must not throw: release what was acquired and ignore late failures.
  lt_.reset();
  cudnn_attention_.reset();
  cudaFree(scratch_.data);
  cudaFree(adamw_table_.data);
  for (DeviceBlock& block : cast_buffers_) cudaFree(block.data);
  cudaFree(error_flag_);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void* CudaBackend::device_malloc(std::size_t bytes) {
  void* block = nullptr;
  const cudaError_t status = cudaMalloc(&block, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it: the error is reported, not left for the next call
    int device = 0;
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaGetDevice(&device);
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw out_of_memory(bytes, "memory of GPU " + std::to_string(device), free_bytes);
  }
  TESSERA_CUDA_CHECK(status);
  return block;
}

void* CudaBackend::allocate_zeroed(std::size_t bytes) {
  const std::size_t size = bytes == 0 ? 1 : bytes;
  void* block = device_malloc(size);
  ledger_.set(block, size);
  TESSERA_CUDA_CHECK(cudaMemsetAsync(block, 0, size, stream_));
  return block;
}

void CudaBackend::free_block(void* block) {
  ledger_.erase(block);
  TESSERA_CUDA_CHECK(cudaFree(block));
}

float* CudaBackend::allocate(std::size_t count) {
  return static_cast<float*>(allocate_zeroed(count * sizeof(float)));
}

void CudaBackend::release(float* buffer) { free_block(buffer); }

int32_t* CudaBackend::allocate_tokens(std::size_t count) {
  return static_cast<int32_t*>(allocate_zeroed(count * sizeof(int32_t)));
}

void CudaBackend::release_tokens(int32_t* buffer) { free_block(buffer); }

MemoryUse CudaBackend::memory_use() const {
  std::size_t free_bytes = 0, total = 0;
  TESSERA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return {ledger_.current_bytes(), ledger_.peak_bytes(), total - free_bytes};
}

namespace {

/// The NVIDIA kernel driver's version ("580.159.04") from /proc/driver/nvidia/version, or "" where
/// that file is missing (a container without it, another vendor's driver).
std::string kernel_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  std::getline(in, line);
  static const std::regex version(R"(Kernel Module.*?\s(\d+\.\d+(\.\d+)?)\s)");
  std::smatch match;
  return std::regex_search(line, match, version) ? match[1].str() : "";
}

}  // namespace

DeviceDescription CudaBackend::describe_device() const {
  int device = 0, driver = 0, runtime = 0;
  TESSERA_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp properties{};
  TESSERA_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  TESSERA_CUDA_CHECK(cudaDriverGetVersion(&driver));
  TESSERA_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  // Versions come as 1000 major + 10 minor (13000 is 13.0).
  auto version = [](int code) {
    return std::to_string(code / 1000) + "." + std::to_string(code % 1000 / 10);
  };
  DeviceDescription description;
  description.kind = "gpu";
  description.name = properties.name;
  const std::string kernel_driver = kernel_driver_version();
  description.driver = (kernel_driver.empty() ? "" : "driver " + kernel_driver + ", ") +
                       "CUDA driver API " + version(driver) + ", runtime " + version(runtime) +
                       ", compute capability " + std::to_string(properties.major) + "." +
                       std::to_string(properties.minor);
  description.memory_bytes = properties.totalGlobalMem;
  description.compute_units = properties.multiProcessorCount;
  return description;
}

void CudaBackend::copy_from_host(float* device, const float* host, std::size_t count) {
  // Pageable sources are staged before the call returns, so the caller may reuse `host` at once.
  if (count == 0) return;
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(device, host, count * sizeof(float), cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::copy_to_host(float* host, const float* device, std::size_t count) {
  if (count == 0) return;
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(host, device, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_tokens_from_host(int32_t* device, const int32_t* host, std::size_t count) {
  if (count == 0) return;
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(device, host, count * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::fill_zero(float* buffer, std::size_t count) {
  if (count == 0) return;
  TESSERA_CUDA_CHECK(cudaMemsetAsync(buffer, 0, count * sizeof(float), stream_));
}

void CudaBackend::copy_device(float* dst, const float* src, std::size_t count) {
  if (count == 0) return;
  TESSERA_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
}

void* CudaBackend::scratch(std::size_t bytes) { return grow(scratch_, bytes); }

void* CudaBackend::grow(DeviceBlock& block, std::size_t bytes) {
  if (bytes > block.bytes) {
    free_block(block.data);  // cudaFree synchronises: no queued kernel still reads it
    block = {};              // stays consistent if the allocation below throws
    block.data = device_malloc(bytes);
    ledger_.set(block.data, bytes);
    block.bytes = bytes;
  }
  return block.data;
}

void CudaBackend::check_launch() { TESSERA_CUDA_CHECK(cudaGetLastError()); }

void CudaBackend::reduce_columns(const ColumnReduction& job) {
  float* partials =
      static_cast<float*>(scratch(column_reduction_scratch(job.rows, job.dim) * sizeof(float)));
  add_column_reductions(job, partials, stream_);
  check_launch();
}

}  // namespace tessera::cuda

namespace tessera {

bool cuda_device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the error so later calls do not see it
    return false;
  }
  return count > 0;
}

std::unique_ptr<Backend> make_cuda_backend(GemmPrecision precision, CudaAttention attention) {
  if (!cuda_device_available()) {
    throw UsageError(
        "the cuda backend needs a CUDA device and driver, and none is usable here; run on a GPU "
        "node or choose the cpu backend");
  }
  return std::make_unique<cuda::CudaBackend>(precision, attention);
}

cudaStream_t cuda_compute_stream(Backend& backend) {
  auto* cuda_backend = dynamic_cast<cuda::CudaBackend*>(&backend);
  TESSERA_CHECK(cuda_backend != nullptr,
                "a CUDA stream was asked of the " + std::string(backend.name()) + " backend");
  return cuda_backend->stream();
}

}  // namespace tessera
