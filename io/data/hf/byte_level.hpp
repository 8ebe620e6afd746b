// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable code point
// (printable Latin-1 bytes for themselves, the rest shifted to U+0100...), so that any byte
// string is a string of vocabulary symbols.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::hf {

class ByteLevelAlphabet {
 public:
  ByteLevelAlphabet();
  /// Each byte of `bytes` replaced by its symbol (UTF-8).
  std::string encode(std::string_view bytes) const;
  /// The byte a code point stands for, or nothing when it is not in the alphabet.
  std::optional<unsigned char> byte_of(char32_t symbol) const;

 private:
  std::array<std::string, 256> symbol_of_byte_;
  std::array<int, 512> byte_of_symbol_{};  // symbols are all below U+0200; -1 where none
};

}  // namespace tessera::hf
