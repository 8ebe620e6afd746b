// tokenizer.json "model" of type BPE: a vocabulary, ranked merges, an unknown token, byte
// fallback (Llama-2: a symbol outside the vocabulary becomes its UTF-8 bytes as <0xXX> tokens)
// and ignore_merges (Llama-3: a word in the vocabulary is one token).
#pragma once

#include <absl/container/flat_hash_map.h>

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::hf {

class BpeModel {
 public:
  /// UsageError naming `where` for a malformed model, dropout, or word affixes.
  BpeModel(const nlohmann::json& spec, const std::string& where);

  /// Appends the ids of one word.
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> id_of(std::string_view token) const;
  /// The token of `id`, or null when the vocabulary has none.
  const std::string* token_of(int32_t id) const;
  /// One more than the largest id.
  int32_t id_bound() const { return static_cast<int32_t>(tokens_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void append_symbol_ids(std::string_view symbol, std::vector<int32_t>& symbols) const;
  void read_merges(const nlohmann::json& merges, const std::string& where);

  // Flat tables: encoding is mostly lookups here, which node-based maps make cache misses.
  absl::flat_hash_map<std::string, int32_t> vocab_;  // looked up by string_view, no copy
  std::vector<std::string> tokens_;             // by id; empty where no token has the id
  absl::flat_hash_map<uint64_t, Merge> merges_;  // by (left id, right id)
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_token_ids_{};  // <0xXX> ids; -1 where absent
};

}  // namespace tessera::hf
