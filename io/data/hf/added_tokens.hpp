// tokenizer.json "added_tokens": whole tokens found in the text before any other step (special
// tokens such as <|endoftext|>, and added words), with Hugging Face's matching rules: leftmost
// longest match; tokens marked "normalized" are looked for in the normalized text, the others
// in the raw text; lstrip/rstrip swallow the whitespace beside a match; a single_word token
// matches only between non-word characters.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::hf {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

/// A piece of text: either an added token (`token` >= 0) or text for the next step.
struct Segment {
  std::string text;
  int32_t token = -1;
  bool at_text_start = false;
};

class AddedTokens {
 public:
  AddedTokens(const nlohmann::json& list, const std::string& where);

  /// Cuts `segment` at the tokens whose `normalized` flag equals `normalized`.
  void split(const Segment& segment, bool normalized, std::vector<Segment>& out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  /// The added token with this id, or null.
  const AddedToken* find(int32_t id) const;

 private:
  struct Found {
    size_t begin, end;  // after stripping
    const AddedToken* token;
  };
  const AddedToken* longest_at(std::string_view text, size_t pos, bool normalized) const;
  bool accept(std::string_view text, size_t& begin, size_t& end, const AddedToken& token) const;

  std::vector<AddedToken> tokens_;
  std::map<int32_t, size_t> index_by_id_;
  std::array<bool, 256> starts_token_{};  // first bytes of any token: a quick reject
};

}  // namespace tessera::hf
