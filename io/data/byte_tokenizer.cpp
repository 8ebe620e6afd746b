#include "core/error.hpp"
#include "io/data/tokenizer.hpp"

namespace tessera {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    TESSERA_CHECK(ids[i] >= 0 && ids[i] < 256, "byte token " + std::to_string(ids[i]));
    text[i] = static_cast<char>(ids[i]);
  }
  return text;
}

std::string tokenizer_kind(std::string_view tokenizer_id) {
  return std::string(tokenizer_id.substr(0, tokenizer_id.find(':')));
}

}  // namespace tessera
