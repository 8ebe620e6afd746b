#include "io/data/hf/byte_level.hpp"

#include "io/data/hf/utf8.hpp"

namespace tessera::hf {

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_symbol_.fill(-1);
  const auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const char32_t symbol = printable(b) ? static_cast<char32_t>(b) : 256 + shifted++;
    append_utf8(symbol_of_byte_[static_cast<size_t>(b)], symbol);
    byte_of_symbol_[symbol] = b;
  }
}

std::string ByteLevelAlphabet::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char byte : bytes) out += symbol_of_byte_[static_cast<unsigned char>(byte)];
  return out;
}

std::optional<unsigned char> ByteLevelAlphabet::byte_of(char32_t symbol) const {
  if (symbol >= byte_of_symbol_.size() || byte_of_symbol_[symbol] < 0) return std::nullopt;
  return static_cast<unsigned char>(byte_of_symbol_[symbol]);
}

}  // namespace tessera::hf
