// Token shards: the files `tessera prepare` writes and the data loader maps.
//
// Layout (little-endian), 128-byte header then the tokens:
//
//   offset size  field
//        0    8  magic "TSRASHRD"
//        8    4  format version (kShardFormatVersion)
//       12    4  token dtype: bytes per token, 2 (uint16, vocab <= 65536) or 4 (uint32)
//       16    8  token count
//       24    4  vocabulary size
//       28    4  reserved, zero
//       32   64  tokenizer id, zero-padded (Tokenizer::id())
//       96    8  FNV-1a 64 of the token bytes
//      104   16  reserved, zero
//      120    8  FNV-1a 64 of header bytes [0, 120)
//      128    -  token count * dtype bytes of tokens
//
// A shard is written to a temporary file and renamed, so a reader sees a whole shard or none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace tessera {

inline constexpr uint32_t kShardFormatVersion = 1;
inline constexpr size_t kShardHeaderBytes = 128;
inline constexpr size_t kTokenizerIdBytes = 64;

enum class TokenDtype : uint32_t { uint16 = 2, uint32 = 4 };

/// The smallest dtype holding ids [0, vocab_size).
TokenDtype token_dtype_for_vocab(int64_t vocab_size);

/// What write_shard wrote, for dataset.json.
struct ShardSummary {
  std::filesystem::path path;
  uint64_t tokens = 0;
  uint64_t bytes = 0;             ///< file size, header included
  uint64_t payload_checksum = 0;  ///< FNV-1a 64 of the token bytes
};

/// Writes `tokens` (each in [0, vocab_size)) as a shard at `path`, atomically (temp file + rename).
ShardSummary write_shard(const std::filesystem::path& path, std::span<const int32_t> tokens,
                         std::string_view tokenizer_id, int64_t vocab_size);

class MappedFile;

/// An open, validated shard. Copies share one mapping; reading is thread-safe.
class ShardReader {
 public:
  /// Maps and validates the shard: magic, version, dtype, header checksum and that the file size
  /// is exactly header + count * dtype bytes. UsageError naming the file otherwise (empty,
  /// truncated, not a shard, other version), telling the user to re-run `tessera prepare`.
  explicit ShardReader(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return count_; }  ///< tokens
  TokenDtype dtype() const { return dtype_; }
  int64_t vocab_size() const { return vocab_size_; }
  const std::string& tokenizer_id() const { return tokenizer_id_; }
  uint64_t payload_checksum() const { return payload_checksum_; }

  /// Copies tokens [first, first + count) into `out` as int32. UsageError naming the shard when a
  /// token is outside the vocabulary (a corrupt file).
  void read(uint64_t first, uint64_t count, int32_t* out) const;
  /// Recomputes the checksum of the tokens; false when it differs from the header's.
  bool verify_payload() const;

 private:
  std::span<const std::byte> payload() const;

  std::filesystem::path path_;
  std::shared_ptr<const MappedFile> file_;
  uint64_t count_ = 0;
  TokenDtype dtype_ = TokenDtype::uint16;
  int64_t vocab_size_ = 0;
  std::string tokenizer_id_;
  uint64_t payload_checksum_ = 0;
};

}  // namespace tessera
