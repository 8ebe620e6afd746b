// Memory of the Kokkos backend: buffers in the execution space's memory space, counted by a
// ledger; copies between them and the host; what the device is.
#include "backend/kokkos/kokkos_backend.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "backend/cpu/host_memory.hpp"
#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "core/error.hpp"

namespace tessera {
namespace kokkos {
namespace {

std::string host_cpu_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::size_t host_memory_bytes() {
  return static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) *
         static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

KokkosBackend::KokkosBackend() : runtime_(KokkosRuntime::acquire()) {}

KokkosBackend::~KokkosBackend() { release_bytes(workspace_); }

void* KokkosBackend::allocate_bytes(std::size_t bytes) {
  void* block = nullptr;
  if constexpr (kHostMemory) {
    // The CPU backend's host memory: huge pages for large buffers (5-10 % on the step's GEMMs,
    // host_memory.hpp), refused up front when larger than the memory left.
    block = cpu::allocate_host(bytes);
    ledger_.set(block, bytes);
    return block;
  }
  try {
    block = Kokkos::kokkos_malloc<MemorySpace>("tessera buffer", bytes == 0 ? 1 : bytes);
  } catch (const std::runtime_error&) {  // Kokkos reports a failed allocation so
    throw out_of_memory(bytes, std::string("memory of Kokkos ") + MemorySpace::name(), 0);
  }
  Kokkos::deep_copy(Vector<char>(static_cast<char*>(block), bytes), char{0});
  ledger_.set(block, bytes);
  return block;
}

void KokkosBackend::release_bytes(void* block) {
  if (block == nullptr) return;
  ledger_.erase(block);
  if constexpr (kHostMemory) {
    std::free(block);
  } else {
    Kokkos::kokkos_free<MemorySpace>(block);
  }
}

float* KokkosBackend::workspace(std::size_t count) {
  if (count <= workspace_count_) return workspace_;
  release_bytes(workspace_);
  workspace_ = nullptr;  // stays valid if the allocation below throws
  workspace_count_ = 0;
  workspace_ = static_cast<float*>(allocate_bytes(count * sizeof(float)));
  workspace_count_ = count;
  return workspace_;
}

float* KokkosBackend::allocate(std::size_t count) {
  return static_cast<float*>(allocate_bytes(count * sizeof(float)));
}

void KokkosBackend::release(float* buffer) { release_bytes(buffer); }

int32_t* KokkosBackend::allocate_tokens(std::size_t count) {
  return static_cast<int32_t*>(allocate_bytes(count * sizeof(int32_t)));
}

void KokkosBackend::release_tokens(int32_t* buffer) { release_bytes(buffer); }

namespace {

template <class T>
using HostVector = Kokkos::View<T*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

}  // namespace

void KokkosBackend::copy_from_host(float* device, const float* host, std::size_t count) {
  Kokkos::deep_copy(Vector<float>(device, count), HostVector<const float>(host, count));
}

void KokkosBackend::copy_to_host(float* host, const float* device, std::size_t count) {
  Kokkos::deep_copy(HostVector<float>(host, count), Vector<const float>(device, count));
}

void KokkosBackend::copy_tokens_from_host(int32_t* device, const int32_t* host, std::size_t count) {
  Kokkos::deep_copy(Vector<int32_t>(device, count), HostVector<const int32_t>(host, count));
}

void KokkosBackend::fill_zero(float* buffer, std::size_t count) {
  Kokkos::deep_copy(Vector<float>(buffer, count), 0.0f);
}

void KokkosBackend::copy_device(float* dst, const float* src, std::size_t count) {
  Kokkos::deep_copy(Vector<float>(dst, count), Vector<const float>(src, count));
}

MemoryUse KokkosBackend::memory_use() const {
  std::size_t system_bytes = 0;  // a device's own usage: Kokkos has no portable query for it
  if constexpr (kHostAccessible) {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    system_bytes = static_cast<std::size_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
  }
  return {ledger_.current_bytes(), ledger_.peak_bytes(), system_bytes};
}

bool KokkosBackend::host_accessible() const { return kHostAccessible; }

DeviceDescription KokkosBackend::describe_device() const {
  DeviceDescription device;
  device.kind = kHostAccessible ? "cpu" : "gpu";
  device.name = kHostAccessible ? host_cpu_name() : std::string(ExecutionSpace::name());
  device.driver = kokkos_build_description();
  device.memory_bytes = kHostAccessible ? host_memory_bytes() : 0;
  device.compute_units = ExecutionSpace().concurrency();
  return device;
}

}  // namespace kokkos

std::unique_ptr<Backend> make_kokkos_backend() { return std::make_unique<kokkos::KokkosBackend>(); }

std::string kokkos_build_description() {
  const int version = KOKKOS_VERSION;
  return "Kokkos " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) +
         "." + std::to_string(version % 100) + ", " + kokkos::ExecutionSpace::name();
}

}  // namespace tessera
