// Private to src/backend: where the buffers of the CPU backend (and of the Kokkos backend on a
// host) live.
//
// Buffers of at least one 2 MiB page start on a page boundary and ask the kernel for transparent
// huge pages. Debian's default THP mode is "madvise", so without asking, every activation,
// weight, gradient and bf16 operand copy sits on 4 KiB pages, and in a virtual machine each TLB
// miss costs a two-level page walk. The step's linear layers ran 5-10 % slower on 4 KiB pages
// (bench/bench_page_size, alternating in one process); the vocabulary head's weight gradient,
// whose transposed operand is read a new 4 KiB page per row, went from 72 to 88-113 GFLOP/s on
// one thread. Only a hint: where THP is off, nothing changes.
#pragma once

#include <cstddef>
#include <cstdlib>

namespace tessera::cpu {

/// Zeroed block of at least `bytes` bytes (one cache line for 0), 64-byte aligned, or from
/// 2 MiB up on a 2 MiB boundary with huge pages asked for. Throws std::bad_alloc; std::free it.
void* allocate_host(std::size_t bytes);

/// A growable array on allocate_host's memory, for scratch and staging buffers: what it held is
/// not kept when it grows.
template <typename T>
class HostArray {
 public:
  HostArray() = default;
  ~HostArray() { std::free(data_); }
  HostArray(const HostArray&) = delete;
  HostArray& operator=(const HostArray&) = delete;

  /// At least `count` elements, zeroed when newly allocated.
  T* reserve(std::size_t count) {
    if (count > count_) {
      std::free(data_);
      data_ = nullptr;  // stays consistent if the allocation below throws
      count_ = 0;
      data_ = static_cast<T*>(allocate_host(count * sizeof(T)));
      count_ = count;
    }
    return data_;
  }
  /// Elements held (what reserve last allocated).
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace tessera::cpu
