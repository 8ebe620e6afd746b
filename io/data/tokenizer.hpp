// Tokenizers turn text into int32 token ids and back. Each one has a stable `id()` that
// `tessera prepare` records in every shard, so a dataset can never be read with the wrong
// vocabulary.
//
//  * ByteTokenizer: built in, one token per byte, vocabulary 256, id "byte".
//  * SentencePieceTokenizer (sentencepiece_tokenizer.hpp): trained by tessera prepare.
//  * HfTokenizer (hf/hf_tokenizer.hpp): a Hugging Face tokenizer.json, id "hf:<FNV-1a 64>".
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// With the special tokens the tokenizer puts around a text (Llama's <s>), if any.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::vector<int32_t> encode_without_special_tokens(std::string_view text) const {
    return encode(text);
  }
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual std::string decode_skipping_special_tokens(std::span<const int32_t> ids) const {
    return decode(ids);
  }
  /// Every id from encode() is in [0, vocab_size()).
  virtual int vocab_size() const = 0;
  /// Stable name of the tokenizer and its exact vocabulary, at most 64 characters.
  virtual std::string id() const = 0;
  /// Tokens with a role rather than text (<|endoftext|>, <s>), by their text.
  virtual std::map<std::string, int32_t> special_tokens() const { return {}; }
};

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int vocab_size() const override { return 256; }
  std::string id() const override { return "byte"; }
};

/// The names published tokenizers give their begin- and end-of-text tokens, in order of
/// preference (GPT-2's <|endoftext|> is both).
inline constexpr std::array<std::string_view, 3> kBeginOfTextNames{"<s>", "<|begin_of_text|>",
                                                                   "<|endoftext|>"};
inline constexpr std::array<std::string_view, 3> kEndOfTextNames{"</s>", "<|end_of_text|>",
                                                                 "<|endoftext|>"};

/// The part of a tokenizer id or spec before ':' ("byte", "sentencepiece", "hf").
std::string tokenizer_kind(std::string_view tokenizer_id);

}  // namespace tessera
