// The bytes a backend holds in buffers it allocated, and their high-water mark: what
// Backend::memory_use reports, and what a memory plan for a layout must predict.
#pragma once

#include <cstddef>
#include <unordered_map>

namespace tessera {

/// Sizes of live blocks by their address, with the running total and its peak. A block that
/// grows is set again under the same key. Not thread-safe: a backend allocates on one thread.
class MemoryLedger {
 public:
  /// Records that `block` now holds `bytes` (a new block, or a new size for a known one).
  void set(const void* block, std::size_t bytes);
  /// Forgets `block`; an unknown block (null, or one allocated elsewhere) changes nothing.
  void erase(const void* block);
  std::size_t current_bytes() const { return current_; }
  std::size_t peak_bytes() const { return peak_; }

 private:
  std::unordered_map<const void*, std::size_t> blocks_;
  std::size_t current_ = 0;
  std::size_t peak_ = 0;
};

}  // namespace tessera
