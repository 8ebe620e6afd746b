// Tokenizers turn text into int32 token ids and back. Each one has a stable `id()` that
// `tessera prepare` records in every shard, so a dataset can never be read with the wrong
// vocabulary.
//
//  * ByteTokenizer: built in, one token per byte, vocabulary 256, id "byte".
//  * SentencePieceTokenizer: a BPE or unigram model trained by libsentencepiece on the input text,
//    id "sentencepiece:<FNV-1a 64 of the model file, 16 hex digits>". Trained with identity
//    normalisation, no dummy prefix and byte fallback, so decode(encode(text)) == text for any
//    valid UTF-8 text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tessera {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  /// Every id from encode() is in [0, vocab_size()).
  virtual int vocab_size() const = 0;
  /// Stable name of the tokenizer and its exact vocabulary, at most 64 characters.
  virtual std::string id() const = 0;
};

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int vocab_size() const override { return 256; }
  std::string id() const override { return "byte"; }
};

struct SentencePieceTrainOptions {
  std::vector<std::filesystem::path> inputs;  ///< text files, one sentence per line
  std::filesystem::path output_dir;           ///< receives tokenizer.model and tokenizer.vocab
  std::string model_type = "bpe";             ///< "bpe" or "unigram"
  int vocab_size = 8192;
  int num_threads = 2;
};

class SentencePieceTokenizer final : public Tokenizer {
 public:
  /// Loads a model file written by train(). UsageError when it is missing or unreadable.
  static SentencePieceTokenizer load(const std::filesystem::path& model_file);
  /// Trains a model on the inputs, writes `output_dir/tokenizer.model` and loads it. UsageError
  /// on a bad model type or a vocabulary the text cannot fill (the message says what to lower).
  static SentencePieceTokenizer train(const SentencePieceTrainOptions& options);

  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  ~SentencePieceTokenizer() override;

  /// Encodes line by line (each line with its '\n'), so the ids of a text are the concatenation
  /// of the ids of its lines: a file can be tokenized in pieces with the same result.
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int vocab_size() const override;
  std::string id() const override { return id_; }
  const std::filesystem::path& model_file() const { return model_file_; }

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
                         std::filesystem::path model_file, std::string id);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::filesystem::path model_file_;
  std::string id_;
};

/// The part of a tokenizer id before ':' ("byte", "sentencepiece"), as named by data.tokenizer.
std::string tokenizer_kind(std::string_view tokenizer_id);

}  // namespace tessera
