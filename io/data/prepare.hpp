// `tessera prepare`: text files -> a token dataset directory the DataLoader reads.
//
// Output directory:
//   train_000000.bin ...   shards of the first (1 - val_fraction) of the tokens
//   val_000000.bin ...     shards of the last val_fraction of the tokens (contiguous, so no
//                          window of one split contains a token of the other)
//   tokenizer.model        the trained sentencepiece model (tokenizer "sentencepiece" only)
//   tokenizer.json         a copy of the Hugging Face tokenizer (tokenizer "hf:PATH" only)
//   dataset.json           tokenizer id and vocabulary, token counts, the unigram entropy of
//                          the training tokens and every shard with its size and FNV-1a 64
//
// The token stream is the concatenation of the inputs' tokens in the order given; each input is
// one document, encoded with the special tokens its tokenizer puts around a text. All tokens are
// held in memory (4 bytes each) while the split point is chosen.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tessera {

struct PrepareOptions {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output_dir;
  std::string tokenizer = "byte";     ///< "byte", "sentencepiece" or "hf:PATH/tokenizer.json"
  int vocab_size = 8192;              ///< sentencepiece only
  std::string sp_model_type = "bpe";  ///< sentencepiece only: "bpe" or "unigram"
  double val_fraction = 0.1;
  int shard_tokens = 1 << 24;
};

/// Tokenizes the inputs and writes the dataset. UsageError on a missing input file, no inputs,
/// an unknown tokenizer, val_fraction outside [0, 1), shard_tokens < 1 or text too short to give
/// at least one training token.
void prepare_dataset(const PrepareOptions& options);

/// Name of the dataset description file inside a prepared directory.
inline constexpr const char* kDatasetJson = "dataset.json";
/// Name of the Hugging Face tokenizer copied into a prepared directory.
inline constexpr const char* kHfTokenizerFile = "tokenizer.json";

}  // namespace tessera
