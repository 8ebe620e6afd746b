// Buffer sizes of the attention op for its tests (kernel tests, conformance suite, CUDA-only
// tests): the packed QKV input and the per-head output, as backend.hpp lays them out.
#pragma once

#include <cstddef>

#include "backend/backend.hpp"

namespace tessera::test {

/// Elements of qkv: [batch, seq, 3, n_heads, head_dim].
inline std::size_t qkv_count(const AttentionShape& s) {
  return static_cast<std::size_t>(s.batch) * s.seq * 3 * s.n_heads * s.head_dim;
}

/// Elements of the attention output: [batch, seq, n_heads, head_dim].
inline std::size_t out_count(const AttentionShape& s) {
  return static_cast<std::size_t>(s.batch) * s.seq * s.n_heads * s.head_dim;
}

}  // namespace tessera::test
