#include "io/data/hf/bpe_model.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.hpp"
#include "io/data/hf/json_fields.hpp"

namespace tessera::hf {

BpeModel::BpeModel(const nlohmann::json& spec, const std::string& where) {
  const auto& vocab = field(spec, "vocab", where);
  if (!vocab.is_object()) throw UsageError(where + ": \"vocab\" must be an object token -> id");
  for (const auto& [token, id] : vocab.items()) {
    const std::optional<int32_t> number = token_id(id);
    if (!number) {
      throw UsageError(where + ": the id of vocabulary token '" + token +
                       "' must be an integer in [0, 2^24)");
    }
    const int32_t value = *number;
    vocab_.emplace(token, value);
    if (static_cast<size_t>(value) >= tokens_.size())
      tokens_.resize(static_cast<size_t>(value) + 1);
    tokens_[static_cast<size_t>(value)] = token;
  }
  const auto dropout = spec.value("dropout", nlohmann::json());
  if (!dropout.is_null() && !(dropout.is_number() && dropout.get<double>() == 0.0)) {
    throw UsageError(where +
                     ": BPE dropout is random, and tessera's data must be reproducible; "
                     "set \"dropout\": null");
  }
  if (!optional_string_field(spec, "continuing_subword_prefix", where).empty() ||
      !optional_string_field(spec, "end_of_word_suffix", where).empty()) {
    throw UsageError(where +
                     ": BPE word prefixes and suffixes are not supported; tessera reads "
                     "byte-level and SentencePiece-style BPE files");
  }
  const std::string unk = optional_string_field(spec, "unk_token", where);
  if (!unk.empty()) {
    unk_id_ = id_of(unk);
    if (!unk_id_) throw UsageError(where + ": unk_token '" + unk + "' is not in the vocabulary");
  }
  fuse_unk_ = bool_field(spec, "fuse_unk", where, false);
  byte_fallback_ = bool_field(spec, "byte_fallback", where, false);
  ignore_merges_ = bool_field(spec, "ignore_merges", where, false);
  for (int b = 0; b < 256; ++b) {
    byte_token_ids_[static_cast<size_t>(b)] = id_of(fmt::format("<0x{:02X}>", b)).value_or(-1);
  }
  read_merges(array_field(spec, "merges", where), where);
}

void BpeModel::read_merges(const nlohmann::json& merges, const std::string& where) {
  int32_t rank = 0;
  for (const auto& merge : merges) {
    // Two spellings: "left right" (before tokenizers 0.20) or ["left", "right"].
    std::string left, right;
    if (merge.is_string()) {
      const auto text = merge.get<std::string>();
      const auto space = text.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == text.size()) {
        throw UsageError(where + ": merge " + std::to_string(rank) + " ('" + text +
                         "') is not two tokens separated by a space");
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      throw UsageError(where + ": merge " + std::to_string(rank) +
                       " must be \"left right\" or [\"left\", \"right\"]");
    }
    const auto left_id = id_of(left), right_id = id_of(right), merged_id = id_of(left + right);
    if (!left_id || !right_id || !merged_id) {
      throw UsageError(where + ": merge " + std::to_string(rank) + " ('" + left + "' + '" + right +
                       "') names a token that is not in the vocabulary");
    }
    merges_.try_emplace(pair_key(*left_id, *right_id), Merge{rank, *merged_id});
    ++rank;
  }
}

std::optional<int32_t> BpeModel::id_of(std::string_view token) const {
  // Debian builds abseil with a string_view of its own.
  const auto found = vocab_.find(absl::string_view(token.data(), token.size()));
  if (found == vocab_.end()) return std::nullopt;
  return found->second;
}

const std::string* BpeModel::token_of(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return nullptr;
  const std::string& token = tokens_[static_cast<size_t>(id)];
  return token.empty() ? nullptr : &token;
}

// A character outside the vocabulary: its bytes as <0xXX> tokens when byte fallback has them
// all, else the unknown token (consecutive unknowns fused into one when fuse_unk).
void BpeModel::append_symbol_ids(std::string_view symbol, std::vector<int32_t>& symbols) const {
  if (const auto id = id_of(symbol)) {
    symbols.push_back(*id);
    return;
  }
  if (byte_fallback_) {
    bool all_bytes = true;
    for (char byte : symbol) all_bytes &= byte_token_ids_[static_cast<unsigned char>(byte)] >= 0;
    if (all_bytes) {
      for (char byte : symbol) symbols.push_back(byte_token_ids_[static_cast<unsigned char>(byte)]);
      return;
    }
  }
  if (!unk_id_) {
    throw UsageError("the tokenizer has no token for '" + std::string(symbol) +
                     "' and no unk_token; use a tokenizer whose vocabulary covers the text");
  }
  if (fuse_unk_ && !symbols.empty() && symbols.back() == *unk_id_) return;
  symbols.push_back(*unk_id_);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (ignore_merges_) {
    if (const auto id = id_of(word)) {
      ids.push_back(*id);
      return;
    }
  }
  // Symbols as a linked list; merges applied lowest rank first, leftmost first among equals,
  // exactly the order of Hugging Face's Word::merge_all.
  std::vector<int32_t> symbol;
  for (size_t pos = 0; pos < word.size();) {
    size_t length = 1;
    while (pos + length < word.size() &&
           (static_cast<unsigned char>(word[pos + length]) & 0xC0) == 0x80) {
      ++length;
    }
    append_symbol_ids(word.substr(pos, length), symbol);
    pos += length;
  }
  const auto n = static_cast<int32_t>(symbol.size());
  std::vector<int32_t> next(symbol.size()), previous(symbol.size());
  std::vector<bool> alive(symbol.size(), true);
  for (int32_t i = 0; i < n; ++i) {
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
    previous[static_cast<size_t>(i)] = i - 1;
  }
  struct Candidate {
    int32_t rank, position, merged_id, left_id, right_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push_pair = [&](int32_t left) {
    const int32_t right = next[static_cast<size_t>(left)];
    if (right < 0) return;
    const auto found = merges_.find(
        pair_key(symbol[static_cast<size_t>(left)], symbol[static_cast<size_t>(right)]));
    if (found != merges_.end()) {
      queue.push({found->second.rank, left, found->second.merged_id,
                  symbol[static_cast<size_t>(left)], symbol[static_cast<size_t>(right)]});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const auto left = static_cast<size_t>(top.position);
    if (!alive[left] || next[left] < 0) continue;
    const auto right = static_cast<size_t>(next[left]);
    // Stale when the pair changed and no longer merges into the same token (Hugging Face's
    // test); an unchanged pair needs no second lookup.
    if (symbol[left] != top.left_id || symbol[right] != top.right_id) {
      const auto found = merges_.find(pair_key(symbol[left], symbol[right]));
      if (found == merges_.end() || found->second.merged_id != top.merged_id) continue;
    }
    symbol[left] = top.merged_id;
    alive[right] = false;
    next[left] = next[right];
    if (next[left] >= 0) previous[static_cast<size_t>(next[left])] = top.position;
    if (previous[left] >= 0) push_pair(previous[left]);
    push_pair(top.position);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = next[static_cast<size_t>(i)]) {
    ids.push_back(symbol[static_cast<size_t>(i)]);
  }
}

}  // namespace tessera::hf
