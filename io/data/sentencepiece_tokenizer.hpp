// SentencePieceTokenizer: a BPE or unigram model trained by libsentencepiece on the input text,
// id "sentencepiece:<FNV-1a 64 of the model file, 16 hex digits>". Trained with identity
// normalisation, no dummy prefix and byte fallback, so decode(encode(text)) == text for any valid
// UTF-8 text.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/data/tokenizer.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tessera {

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

}  // namespace tessera
