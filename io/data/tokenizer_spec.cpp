#include "io/data/tokenizer_spec.hpp"

#include <string>

#include "core/error.hpp"
#include "io/data/hf/hf_tokenizer.hpp"
#include "io/data/sentencepiece_tokenizer.hpp"

namespace tessera {

std::string_view tokenizer_spec_file(std::string_view spec) {
  const auto colon = spec.find(':');
  return colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
}

std::unique_ptr<Tokenizer> open_tokenizer(std::string_view spec) {
  const std::string kind = tokenizer_kind(spec);
  const std::string file(tokenizer_spec_file(spec));
  if (spec == "byte") return std::make_unique<ByteTokenizer>();
  if (kind == "hf" && !file.empty()) return std::make_unique<HfTokenizer>(HfTokenizer::load(file));
  if (kind == "sentencepiece" && !file.empty()) {
    return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::load(file));
  }
  throw UsageError("tokenizer '" + std::string(spec) +
                   "' is not one tessera knows; use byte, sentencepiece:DIR/tokenizer.model or "
                   "hf:PATH/tokenizer.json");
}

}  // namespace tessera
