// `tessera prepare`: a corpus -> a token dataset directory the DataLoader reads.
//
// Inputs: plain-text files (each one document), JSON Lines files (one document per line, its
// text under --text-key), either gzip or zstd compressed, directories of them and lists of them
// (corpus/documents.hpp). Every document is encoded with the special tokens its tokenizer puts
// around a text; the token stream is the documents' tokens in input order.
//
// Work is cut into chunks of consecutive documents (a chunk closes once it holds chunk_bytes of
// raw input), chunk c encoded by rank c % ranks into OUTPUT/.prepare/chunk_c.bin. A chunk file
// is written whole or not at all, so a prepare that was stopped keeps its finished chunks and
// the next run with the same inputs and tokenizer (plan.json) encodes only the rest. The ids do
// not depend on the number of ranks or on the chunk size: a chunk boundary is a document
// boundary. The ranks then cut the stream into the splits, shard s written by rank s % ranks
// into the work directory; rank 0 moves them into place:
//
//   train_000000.bin ...   shards of the first (1 - val_fraction) of the tokens
//   val_000000.bin ...     shards of the last val_fraction of the tokens (contiguous, so no
//                          window of one split contains a token of the other)
//   tokenizer.model        the trained sentencepiece model (tokenizer "sentencepiece" only)
//   tokenizer.json         a copy of the Hugging Face tokenizer (tokenizer "hf:PATH" only)
//   dataset.json           tokenizer id, vocabulary and special tokens, token and document
//                          counts, the unigram entropy of the training tokens and every shard
//                          with its size and FNV-1a 64; written last
//
// A previous dataset in OUTPUT stays whole and readable until the new one's splits are written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tessera {

class Tokenizer;

struct PrepareOptions {
  std::vector<std::filesystem::path> inputs;  ///< files and directories
  std::filesystem::path input_list;           ///< a file naming more inputs, one per line
  std::filesystem::path output_dir;
  std::string tokenizer = "byte";     ///< "byte", "sentencepiece" or "hf:PATH/tokenizer.json"
  std::string text_key = "text";      ///< JSON Lines: the field holding a document's text
  int vocab_size = 8192;              ///< sentencepiece only
  std::string sp_model_type = "bpe";  ///< sentencepiece only: "bpe" or "unigram"
  double val_fraction = 0.1;
  int shard_tokens = 1 << 24;
  uint64_t chunk_bytes = 0;  ///< 0: 1/256 of the input, between 1 and 64 MiB
};

/// How far tokenize_chunks has come, for a progress display.
struct PrepareProgress {
  uint64_t input_bytes_read = 0;  ///< of the input files (compressed bytes where compressed)
  uint64_t input_bytes = 0;       ///< all input files together
  uint64_t text_bytes = 0;        ///< of document text this rank encoded
  uint64_t tokens = 0;            ///< this rank encoded
  int64_t chunks_encoded = 0;     ///< by this rank, in this run
  int64_t chunks_kept = 0;        ///< this rank's chunks an earlier, stopped run had finished
};
using PrepareProgressSink = std::function<void(const PrepareProgress&)>;

/// Step 1, on rank 0 alone: checks the options and inputs, makes the output directory, keeps
/// the chunks of an earlier stopped run when its plan matches (else clears them) and trains the
/// sentencepiece model if asked. UsageError on a missing input, no inputs, an unknown tokenizer
/// or one that does not load, val_fraction outside [0, 1), shard_tokens < 1, or sentencepiece
/// asked to train on anything but plain text. Returns the chunks kept.
int64_t begin_prepare(const PrepareOptions& options);

/// The tokenizer of the steps that follow (for sentencepiece, the one step 1 trained), opened
/// once on every rank.
std::unique_ptr<Tokenizer> open_prepare_tokenizer(const PrepareOptions& options);

/// Step 2, on every rank once all see step 1 done: encodes the chunks this rank owns and has
/// not encoded before; calls `progress` now and then. Returns the number of chunks in all.
/// UsageError naming file and line for bad JSON Lines, naming the file for a corrupt stream.
int64_t tokenize_chunks(const PrepareOptions& options, const Tokenizer& tokenizer, int rank,
                        int ranks, const PrepareProgressSink& progress = {});

/// Step 3, on every rank once all finished step 2: checks this rank's chunks (a damaged one is
/// removed, UsageError) and writes its shards of the splits into the work directory. Returns
/// how often each id occurs in the training tokens it wrote (summed over ranks for step 4;
/// doubles, exact to 2^53). UsageError when the text gives no training token.
std::vector<double> write_shards(const PrepareOptions& options, const Tokenizer& tokenizer,
                                 int64_t chunks, int rank, int ranks);

/// Step 4, on rank 0 once every rank finished step 3: replaces the previous dataset by the new
/// shards, writes dataset.json last and removes the work directory.
void finish_prepare(const PrepareOptions& options, const Tokenizer& tokenizer, int64_t chunks,
                    const std::vector<double>& train_counts);

/// The four steps in one process.
void prepare_dataset(const PrepareOptions& options, const PrepareProgressSink& progress = {});

/// Name of the dataset description file inside a prepared directory.
inline constexpr const char* kDatasetJson = "dataset.json";
/// Name of the Hugging Face tokenizer copied into a prepared directory.
inline constexpr const char* kHfTokenizerFile = "tokenizer.json";

}  // namespace tessera
