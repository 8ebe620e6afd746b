// Host memory of the CPU backend (see host_memory.hpp).
#include "backend/cpu/host_memory.hpp"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace tessera::cpu {
namespace {

constexpr std::size_t kCacheLine = 64;  // enough for AVX-512 loads
constexpr std::size_t kHugePage = std::size_t{2} << 20;

}  // namespace

void* allocate_host(std::size_t bytes) {
  const std::size_t alignment = bytes >= kHugePage ? kHugePage : kCacheLine;
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  const std::size_t size = rounded == 0 ? alignment : rounded;
  void* block = std::aligned_alloc(alignment, size);
  if (block == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (alignment == kHugePage) madvise(block, size, MADV_HUGEPAGE);  // before the first touch
#endif
  std::memset(block, 0, size);
  return block;
}

}  // namespace tessera::cpu
