// Token shards read as one stream: the shards of a dataset split, or the chunks that
// `tessera prepare` writes before it cuts the splits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/data/shard.hpp"

namespace tessera {

/// The shards of one split read as one stream of tokens.
class TokenStream {
 public:
  explicit TokenStream(std::vector<ShardReader> shards) : shards_(std::move(shards)), starts_{0} {
    for (const auto& shard : shards_) starts_.push_back(starts_.back() + shard.size());
  }
  uint64_t size() const { return starts_.back(); }
  size_t n_shards() const { return shards_.size(); }
  const std::vector<ShardReader>& shards() const { return shards_; }

  /// Tokens [first, first + count), which may span shards.
  void read(uint64_t first, uint64_t count, int32_t* out) const {
    TESSERA_CHECK(first + count <= size(), std::to_string(first + count));
    auto shard = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), first) -
                                     starts_.begin() - 1);
    while (count > 0) {
      const uint64_t offset = first - starts_[shard];
      const uint64_t take = std::min(count, shards_[shard].size() - offset);
      shards_[shard].read(offset, take, out);
      out += take;
      first += take;
      count -= take;
      ++shard;
    }
  }

 private:
  std::vector<ShardReader> shards_;
  std::vector<uint64_t> starts_;  ///< starts_[i] = first token of shard i; back() = size()
};

}  // namespace tessera
