// Host memory of the CPU backend (see host_memory.hpp).
#include "backend/cpu/host_memory.hpp"

#include <sys/mman.h>

#include <cstring>
#include <fstream>
#include <new>
#include <string>

#include "core/error.hpp"

namespace tessera::cpu {
namespace {

constexpr std::size_t kCacheLine = 64;  // enough for AVX-512 loads
constexpr std::size_t kHugePage = std::size_t{2} << 20;
/// Below this a buffer is not checked against the free memory (the check reads /proc).
constexpr std::size_t kCheckedBytes = std::size_t{64} << 20;

/// What the kernel can still hand out without killing a process: MemAvailable (free memory and
/// the page cache it can drop) plus free swap, from /proc/meminfo; 0 when unknown.
std::size_t memory_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::size_t total_kib = 0;
  bool found = false;
  for (std::string key; meminfo >> key;) {
    std::size_t kib = 0;
    meminfo >> kib;
    if (key == "MemAvailable:" || key == "SwapFree:") {
      total_kib += kib;
      found = true;
    }
    meminfo.ignore(64, '\n');  // the unit
  }
  return found ? total_kib * 1024 : 0;
}

}  // namespace

void* allocate_host(std::size_t bytes) {
  const std::size_t alignment = bytes >= kHugePage ? kHugePage : kCacheLine;
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  const std::size_t size = rounded == 0 ? alignment : rounded;
  // Linux promises more than it has: a buffer larger than the memory it can still give would be
  // killed by the OOM killer while it is zeroed below, with no message. Refuse it here instead.
  const std::size_t available = size >= kCheckedBytes ? memory_available_bytes() : 0;
  if (available > 0 && size > available) throw out_of_memory(size, "host memory", available);
  void* block = std::aligned_alloc(alignment, size);
  if (block == nullptr) throw out_of_memory(size, "host memory", available);
#ifdef MADV_HUGEPAGE
  if (alignment == kHugePage) madvise(block, size, MADV_HUGEPAGE);  // before the first touch
#endif
  std::memset(block, 0, size);
  return block;
}

}  // namespace tessera::cpu
