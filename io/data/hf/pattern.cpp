#define PCRE2_CODE_UNIT_WIDTH 8
#include "io/data/hf/pattern.hpp"

#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace tessera::hf {

// A regex from a tokenizer.json is outside input: bounded, so that one that backtracks without
// end on some text stops with a message instead of hanging a prepare. The limits are far above
// what the published pre-tokenizers need on a whole book as one document (the JIT's default
// 32 KiB stack is not).
constexpr uint32_t kMatchLimit = 100'000'000;
constexpr size_t kJitStackBytes = size_t{64} << 20;

struct Pattern::Compiled {
  pcre2_code* code = nullptr;
  pcre2_match_data* match_data = nullptr;  // not shared across threads: see find_all
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ~Compiled() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match_data);
    pcre2_code_free(code);
  }
};

Pattern::Pattern(std::string literal, std::unique_ptr<Compiled> compiled)
    : literal_(std::move(literal)), compiled_(std::move(compiled)) {}
Pattern::Pattern(Pattern&&) noexcept = default;
Pattern& Pattern::operator=(Pattern&&) noexcept = default;
Pattern::~Pattern() = default;

Pattern Pattern::literal(std::string text) { return Pattern(std::move(text), nullptr); }

Pattern Pattern::regex(const std::string& expression, const std::string& where) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(expression.data()),
                                   expression.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK,
                                   &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    throw UsageError(where + ": the regex does not compile at offset " +
                     std::to_string(error_offset) + " (" + reinterpret_cast<char*>(message) +
                     "); fix the pattern");
  }
  auto compiled = std::make_unique<Compiled>();
  compiled->code = code;
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where no JIT
  compiled->match_data = pcre2_match_data_create_from_pattern(code, nullptr);
  compiled->context = pcre2_match_context_create(nullptr);
  compiled->jit_stack = pcre2_jit_stack_create(32 << 10, kJitStackBytes, nullptr);
  TESSERA_CHECK(compiled->match_data && compiled->context && compiled->jit_stack,
                "out of memory compiling " + where);
  pcre2_set_match_limit(compiled->context, kMatchLimit);
  pcre2_jit_stack_assign(compiled->context, nullptr, compiled->jit_stack);
  return Pattern(expression, std::move(compiled));
}

Pattern Pattern::from_json(const nlohmann::json& pattern, const std::string& where) {
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    return literal(pattern["String"].get<std::string>());
  }
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    return regex(pattern["Regex"].get<std::string>(), where);
  }
  throw UsageError(where + ": a pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

std::vector<Match> Pattern::find_all(std::string_view text) const {
  std::vector<Match> matches;
  if (!compiled_) {
    if (literal_.empty()) return matches;
    for (size_t at = text.find(literal_); at != std::string_view::npos;
         at = text.find(literal_, at + literal_.size())) {
      matches.emplace_back(at, at + literal_.size());
    }
    return matches;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    const int rc = pcre2_match(compiled_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                               compiled_->match_data, compiled_->context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw UsageError("the tokenizer's regex " + literal_ + " gave up on a text of " +
                       std::to_string(text.size()) + " bytes (" + reinterpret_cast<char*>(message) +
                       "); it backtracks too far: simplify the pattern in tokenizer.json");
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(compiled_->match_data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      offset = end;
    } else {
      // An empty match: step over one whole code point, as Rust's regex iterators do.
      if (begin >= text.size()) break;
      size_t length = 1;
      while (begin + length < text.size() &&
             (static_cast<unsigned char>(text[begin + length]) & 0xC0) == 0x80) {
        ++length;
      }
      offset = begin + length;
    }
  }
  return matches;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  size_t last = 0;
  for (const auto& [begin, end] : find_all(text)) {
    out.append(text.substr(last, begin - last));
    out.append(content);
    last = end;
  }
  out.append(text.substr(last));
  return out;
}

}  // namespace tessera::hf
