// The trainer's view of data: numbered samples of two splits, each a window of seq_len + 1
// tokens split into inputs (the first seq_len) and targets (the last seq_len).
//
// Sources:
//  * "synthetic": the Markov source of synthetic.hpp over min(model.vocab_size, 256) states,
//    seeded by data.seed. Sample g of a split is generated from (data.seed, split, g); both
//    splits are unbounded and the loss floor is known.
//  * a directory written by prepare_dataset(): the train split is cut into non-overlapping
//    windows (stride seq_len, consecutive windows share one token), N of them; global sample g
//    reads window SampleOrder(N, data.seed).window(g), a fresh permutation every epoch. The
//    validation split is read in order: sample g is window g mod N_val.
//
// A sample depends only on (source, seed, split, g), never on who reads it: any data-parallel
// rank reads any global sample without coordination, and a resumed run reads the same samples.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "io/data/split.hpp"

namespace tessera {

class DataSource;

/// One token shard of a prepared dataset, as the run manifest records it.
struct ShardChecksum {
  std::string split;  ///< "train" or "validation"
  std::string file;   ///< name inside data.source
  uint64_t tokens = 0;
  uint64_t fnv1a64 = 0;  ///< of the token bytes, as the shard's header records it
};

/// What one source of the data gives a run (data.sources: each directory; else the one source).
struct SourceDraw {
  std::string source;    ///< its directory ("synthetic" for the built-in source)
  double weight = 1.0;   ///< normalised
  uint64_t samples = 0;  ///< of the first N training samples, how many come from it
  uint64_t tokens = 0;   ///< samples * seq_len
};

class DataLoader {
 public:
  /// Opens data.source ("synthetic" or a directory written by prepare_dataset). UsageError on a
  /// missing directory/file, an empty or truncated shard, a tokenizer that does not match
  /// data.tokenizer, or a vocabulary larger than model.vocab_size.
  static DataLoader open(const DataConfig& data, const ModelConfig& model);

  /// Writes inputs and targets, each [count, seq_len] int32, for global samples
  /// [first_sample, first_sample + count) of the split. targets are inputs shifted by one token.
  /// Thread-safe; allocates nothing.
  void read(Split split, int64_t first_sample, int count, int32_t* inputs, int32_t* targets) const;

  /// Entropy floor of the source in nats per token, or NaN when unknown (real text).
  double loss_floor() const;
  /// Unigram entropy of the training tokens (nats) — a baseline a trained model must beat.
  double unigram_entropy() const;
  std::string describe() const;  // one line for the log
  /// The tokenizer's stable id ("byte", "sentencepiece:<hash>", or the synthetic source's).
  std::string tokenizer_id() const;
  /// The tokenizer's special tokens (<|endoftext|>, <s>) by text; empty for byte or synthetic.
  std::map<std::string, int32_t> special_tokens() const;

  int seq_len() const { return seq_len_; }
  /// Token ids are in [0, vocab_size()); vocab_size() <= model.vocab_size.
  int vocab_size() const;
  /// Windows in one pass over the split; nullopt when the split is unbounded (synthetic).
  std::optional<int64_t> samples_per_epoch(Split split) const;
  /// How the first `samples` training samples divide over the sources (exact: the mix is a
  /// function of the sample index).
  std::vector<SourceDraw> drawn(int64_t samples) const;
  /// Every shard of a prepared dataset, train then validation, with the checksum its header
  /// records (cheap: nothing is read); empty for the synthetic source.
  std::vector<ShardChecksum> shard_checksums() const;
  /// Names of the shards whose tokens no longer hash to their header's checksum, among shard
  /// i of shard_checksums() for every i % parts == part (so `parts` ranks share the work), hashed
  /// `threads` shards at a time. Streams each shard once through its memory map: memory stays
  /// bounded by the page cache, which may evict what was read.
  std::vector<std::string> damaged_shards(int part = 0, int parts = 1, int threads = 1) const;
  /// Bytes of token payload damaged_shards(part, parts) reads.
  uint64_t payload_bytes(int part = 0, int parts = 1) const;

 private:
  DataLoader(std::shared_ptr<const DataSource> source, int seq_len);

  // Immutable after open(), so copies share it and reads need no locking.
  std::shared_ptr<const DataSource> source_;
  int seq_len_;
};

}  // namespace tessera
