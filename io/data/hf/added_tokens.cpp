#include "io/data/hf/added_tokens.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/data/hf/json_fields.hpp"
#include "io/data/hf/utf8.hpp"

namespace tessera::hf {
namespace {

size_t previous_code_point(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return start;
}

}  // namespace

AddedTokens::AddedTokens(const nlohmann::json& list, const std::string& where) {
  if (list.is_null()) return;
  if (!list.is_array()) throw UsageError(where + ": \"added_tokens\" must be a list");
  for (const auto& entry : list) {
    AddedToken token;
    const auto id = token_id(field(entry, "id", where + " added token"));
    if (!id) throw UsageError(where + ": an added token's id must be an integer in [0, 2^24)");
    token.id = *id;
    token.content = string_field(entry, "content", where + " added token");
    if (token.content.empty()) throw UsageError(where + ": an added token is empty");
    token.single_word = bool_field(entry, "single_word", where, false);
    token.lstrip = bool_field(entry, "lstrip", where, false);
    token.rstrip = bool_field(entry, "rstrip", where, false);
    token.special = bool_field(entry, "special", where, false);
    token.normalized = bool_field(entry, "normalized", where, !token.special);
    index_by_id_[token.id] = tokens_.size();
    starts_token_[static_cast<unsigned char>(token.content[0])] = true;
    tokens_.push_back(std::move(token));
  }
}

const AddedToken* AddedTokens::find(int32_t id) const {
  const auto found = index_by_id_.find(id);
  return found == index_by_id_.end() ? nullptr : &tokens_[found->second];
}

const AddedToken* AddedTokens::longest_at(std::string_view text, size_t pos,
                                          bool normalized) const {
  const AddedToken* best = nullptr;
  for (const AddedToken& token : tokens_) {
    if (token.normalized != normalized) continue;
    if (best && token.content.size() <= best->content.size()) continue;
    if (text.substr(pos).starts_with(token.content)) best = &token;
  }
  return best;
}

// Applies single_word, lstrip and rstrip to a match at [begin, end); false when it is rejected.
bool AddedTokens::accept(std::string_view text, size_t& begin, size_t& end,
                         const AddedToken& token) const {
  size_t length = 0;
  if (token.single_word) {
    const bool word_before = begin > 0 && is_word_character(code_point_at(
                                              text, previous_code_point(text, begin), length));
    const bool word_after =
        end < text.size() && is_word_character(code_point_at(text, end, length));
    if (word_before || word_after) return false;
  }
  if (token.lstrip) {
    while (begin > 0) {
      const size_t start = previous_code_point(text, begin);
      if (!is_white_space(code_point_at(text, start, length))) break;
      begin = start;
    }
  }
  if (token.rstrip) {
    while (end < text.size() && is_white_space(code_point_at(text, end, length))) end += length;
  }
  return true;
}

void AddedTokens::split(const Segment& segment, bool normalized, std::vector<Segment>& out) const {
  const std::string_view text = segment.text;
  size_t emitted = 0;  // text before this offset is already in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* token = starts_token_[static_cast<unsigned char>(text[pos])]
                                  ? longest_at(text, pos, normalized)
                                  : nullptr;
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + token->content.size();
    if (!accept(text, begin, end, *token)) {
      pos = end;
      continue;
    }
    begin = std::max(begin, emitted);  // an lstrip never reaches into the previous token
    if (begin > emitted) {
      out.push_back({std::string(text.substr(emitted, begin - emitted)), -1,
                     segment.at_text_start && emitted == 0});
    }
    out.push_back({std::string(text.substr(begin, end - begin)), token->id, false});
    emitted = pos = end;
  }
  if (emitted < text.size()) {  // empty pieces are dropped, as Hugging Face drops them
    out.push_back({std::string(text.substr(emitted)), -1, segment.at_text_start && emitted == 0});
  }
}

}  // namespace tessera::hf
