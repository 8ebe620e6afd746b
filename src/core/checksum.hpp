// Checksums of shards, tokenizer models and parameters: FNV-1a 64, which is tiny, streaming and
// good enough to catch truncation and bit rot (not an adversary).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace tessera {

inline constexpr uint64_t kFnv1a64Offset = 0xCBF29CE484222325ull;

/// FNV-1a 64 of `bytes`, continuing from `state` (pass the previous result to hash in pieces).
uint64_t fnv1a64(std::span<const std::byte> bytes, uint64_t state = kFnv1a64Offset);

/// The 16 lower-case hex digits of `value`, most significant first.
std::string to_hex16(uint64_t value);

}  // namespace tessera
