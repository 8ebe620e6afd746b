// Host memory of the CPU backend (see host_memory.hpp).
#include "backend/cpu/host_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "core/error.hpp"

namespace tessera::cpu {
namespace {

constexpr std::size_t kCacheLine = 64;  // enough for AVX-512 loads
constexpr std::size_t kHugePage = std::size_t{2} << 20;

}  // namespace

void* allocate_host(std::size_t bytes) {
  const std::size_t alignment = bytes >= kHugePage ? kHugePage : kCacheLine;
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  const std::size_t size = rounded == 0 ? alignment : rounded;
  // Linux promises more than it has: a buffer larger than the memory free now would be killed by
  // the OOM killer while it is zeroed below, with no message. Refuse it here instead.
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const std::size_t available =
      pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
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
