#include "backend/memory_ledger.hpp"

#include <algorithm>

namespace tessera {

void MemoryLedger::set(const void* block, std::size_t bytes) {
  std::size_t& held = blocks_[block];
  current_ = current_ - held + bytes;
  held = bytes;
  peak_ = std::max(peak_, current_);
}

void MemoryLedger::erase(const void* block) {
  const auto found = blocks_.find(block);
  if (found == blocks_.end()) return;
  current_ -= found->second;
  blocks_.erase(found);
}

}  // namespace tessera
