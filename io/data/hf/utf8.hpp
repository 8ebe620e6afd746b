// UTF-8 helpers for the Hugging Face tokenizer: Hugging Face's library only ever sees valid
// UTF-8 (its callers hand it strings), so tessera first replaces every invalid sequence the way
// they do, then walks code points.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tessera::hf {

/// `text` with each maximal invalid subpart replaced by U+FFFD (the Unicode "substitution of
/// maximal subparts" practice that Rust's from_utf8_lossy and Node's decoder follow).
std::string to_valid_utf8(std::string_view text);

/// The code point starting at `text[pos]` of valid UTF-8; `length` receives its byte count.
char32_t code_point_at(std::string_view text, size_t pos, size_t& length);

/// Appends `c` encoded as UTF-8.
void append_utf8(std::string& out, char32_t c);

/// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s accept).
bool is_white_space(char32_t c);

/// Letters and numbers (Unicode L* and N*) or '_': a "word" character for single_word tokens.
bool is_word_character(char32_t c);

}  // namespace tessera::hf
