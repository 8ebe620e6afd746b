// Checksums of shards, tokenizer models, parameters and checkpoint tensors: FNV-1a 64, tiny
// and streaming, and a position-keyed sum for tensors written in blocks. Both catch truncation,
// misplaced data and bit rot, not an adversary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace tessera {

inline constexpr uint64_t kFnv1a64Offset = 0xCBF29CE484222325ull;

/// FNV-1a 64 of `bytes`, continuing from `state` (pass the previous result to hash in pieces).
uint64_t fnv1a64(std::span<const std::byte> bytes, uint64_t state = kFnv1a64Offset);

/// A checksum of float32 tensors that pieces of a tensor compute apart, in any order, and add
/// up: the sum (mod 2^64) over the elements of fmix64((i * 0x9E3779B97F4A7C15) XOR bits), i the
/// element's row-major global index, bits its IEEE-754 bits and fmix64 MurmurHash3's 64-bit
/// finalizer (a bijection, so a changed element always changes its term). Ranks holding blocks
/// of a tensor sum their own elements, so a checkpoint's checksum comes from the buffers as they
/// are written and is verified from the buffers as they are read, with no pass over the file.
/// Returns `sum` plus the terms of `run`, whose first element has global index `first_index`.
uint64_t position_hash(std::span<const float> run, uint64_t first_index, uint64_t sum = 0);

/// The 16 lower-case hex digits of `value`, most significant first.
std::string to_hex16(uint64_t value);

}  // namespace tessera
