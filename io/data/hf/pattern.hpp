// A split pattern of tokenizer.json: {"String": literal} or {"Regex": expression}. Regexes run
// on PCRE2 (UTF and Unicode properties, JIT-compiled), which reads the Oniguruma expressions of
// Hugging Face's pre-tokenizers (\p{L}, \p{N}, (?i:...), lookahead) with the same meaning.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::hf {

/// [begin, end) byte offsets of one match.
using Match = std::pair<size_t, size_t>;

class Pattern {
 public:
  /// From a tokenizer.json pattern object; UsageError naming `where` when it is neither form or
  /// the regex does not compile.
  static Pattern from_json(const nlohmann::json& pattern, const std::string& where);
  static Pattern regex(const std::string& expression, const std::string& where);
  static Pattern literal(std::string text);

  Pattern(Pattern&&) noexcept;
  Pattern& operator=(Pattern&&) noexcept;
  ~Pattern();

  /// The non-overlapping matches in `text` (valid UTF-8), left to right; empty matches skipped.
  std::vector<Match> find_all(std::string_view text) const;

  /// `text` with every match replaced by `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  struct Compiled;
  Pattern(std::string literal, std::unique_ptr<Compiled> compiled);

  std::string literal_;
  std::unique_ptr<Compiled> compiled_;  // null for a literal pattern
};

}  // namespace tessera::hf
