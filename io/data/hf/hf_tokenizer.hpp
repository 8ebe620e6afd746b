// HfTokenizer: a Hugging Face tokenizer.json (GPT-2, GPT-NeoX, Llama-2, Llama-3 and others of
// their kind) read and run in C++, giving the same ids as Hugging Face's `tokenizers` library.
// Named in configuration as data.tokenizer = "hf:PATH/tokenizer.json"; its id is
// "hf:<FNV-1a 64 of the file, 16 hex digits>".
//
// Encoding follows the library's pipeline: invalid UTF-8 replaced by U+FFFD; added tokens that
// match the raw text cut out; the rest normalized; added tokens of the normalized text cut out;
// the pre-tokenizer's words each encoded by the BPE model (words cached); the post-processor's
// special tokens added when asked. What the file uses and tessera does not support (WordPiece
// and Unigram models, BPE dropout, other normalizers) is refused on load, by name.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/data/tokenizer.hpp"

namespace tessera {

/// The id of the tokenizer in this file, from its bytes alone (the file is not parsed). UsageError
/// for a missing or unreadable file.
std::string hf_tokenizer_id(const std::filesystem::path& tokenizer_json);

class HfTokenizer final : public Tokenizer {
 public:
  /// UsageError naming the file for a missing, unreadable or unsupported tokenizer.json.
  static HfTokenizer load(const std::filesystem::path& tokenizer_json);

  HfTokenizer(HfTokenizer&&) noexcept;
  HfTokenizer& operator=(HfTokenizer&&) noexcept;
  ~HfTokenizer() override;

  /// With the post-processor's special tokens (Hugging Face's default). Safe to call from
  /// several threads (calls are serialised).
  std::vector<int32_t> encode(std::string_view text) const override;
  std::vector<int32_t> encode_without_special_tokens(std::string_view text) const override;
  /// Ids outside the vocabulary are dropped.
  std::string decode(std::span<const int32_t> ids) const override;
  std::string decode_skipping_special_tokens(std::span<const int32_t> ids) const override;
  int vocab_size() const override;
  std::string id() const override;
  /// The added tokens marked special (<|endoftext|>, <s>, ...), by text.
  std::map<std::string, int32_t> special_tokens() const override;
  const std::filesystem::path& file() const;

 private:
  struct Pipeline;
  explicit HfTokenizer(std::unique_ptr<Pipeline> pipeline);
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace tessera
