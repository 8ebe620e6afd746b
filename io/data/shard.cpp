#include "io/data/shard.hpp"

#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace tessera {

static_assert(std::endian::native == std::endian::little, "shards are little-endian");

namespace {

constexpr char kMagic[8] = {'T', 'S', 'R', 'A', 'S', 'H', 'R', 'D'};
constexpr size_t kVersionOffset = 8, kDtypeOffset = 12, kCountOffset = 16, kVocabOffset = 24,
                 kTokenizerOffset = 32, kPayloadSumOffset = 96, kHeaderSumOffset = 120;

using Header = std::array<std::byte, kShardHeaderBytes>;

template <typename T>
void put(Header& header, size_t offset, T value) {
  std::memcpy(header.data() + offset, &value, sizeof(T));
}

template <typename T>
T get(const std::byte* header, size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof(T));
  return value;
}

uint64_t header_checksum(const std::byte* header) {
  return fnv1a64(std::span(header, kHeaderSumOffset));
}

std::string rerun_hint() { return "; re-run `tessera prepare` to rewrite it"; }

[[noreturn]] void throw_bad_shard(const std::filesystem::path& path, const std::string& problem) {
  throw UsageError("shard " + path.string() + " " + problem + rerun_hint());
}

Header make_header(uint64_t count, TokenDtype dtype, std::string_view tokenizer_id,
                   int64_t vocab_size, uint64_t payload_checksum) {
  Header header{};
  std::memcpy(header.data(), kMagic, sizeof(kMagic));
  put(header, kVersionOffset, kShardFormatVersion);
  put(header, kDtypeOffset, static_cast<uint32_t>(dtype));
  put(header, kCountOffset, count);
  put(header, kVocabOffset, static_cast<uint32_t>(vocab_size));
  std::memcpy(header.data() + kTokenizerOffset, tokenizer_id.data(), tokenizer_id.size());
  put(header, kPayloadSumOffset, payload_checksum);
  put(header, kHeaderSumOffset, header_checksum(header.data()));
  return header;
}

/// The tokens as the shard's little-endian payload of `Token`s.
template <typename Token>
std::vector<std::byte> narrow_tokens(std::span<const int32_t> tokens, int64_t vocab_size) {
  std::vector<std::byte> payload(tokens.size() * sizeof(Token));
  for (size_t i = 0; i < tokens.size(); ++i) {
    TESSERA_CHECK(
        tokens[i] >= 0 && tokens[i] < vocab_size,
        "token " + std::to_string(tokens[i]) + " outside vocabulary " + std::to_string(vocab_size));
    const auto token = static_cast<Token>(tokens[i]);
    std::memcpy(payload.data() + i * sizeof(Token), &token, sizeof(Token));
  }
  return payload;
}

template <typename Token>
void widen_tokens(const std::byte* bytes, uint64_t count, int64_t vocab_size, int32_t* out,
                  const std::filesystem::path& path) {
  Token largest = 0;
  for (uint64_t i = 0; i < count; ++i) {
    Token token;
    std::memcpy(&token, bytes + i * sizeof(Token), sizeof(Token));
    largest = std::max(largest, token);
    out[i] = static_cast<int32_t>(token);
  }
  if (count > 0 && static_cast<int64_t>(largest) >= vocab_size) {
    throw_bad_shard(path, "holds token " + std::to_string(largest) + " outside its vocabulary of " +
                              std::to_string(vocab_size) + " (corrupt file)");
  }
}

}  // namespace

TokenDtype token_dtype_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65536 ? TokenDtype::uint16 : TokenDtype::uint32;
}

ShardSummary write_shard(const std::filesystem::path& path, std::span<const int32_t> tokens,
                         std::string_view tokenizer_id, int64_t vocab_size) {
  TESSERA_CHECK(tokenizer_id.size() <= kTokenizerIdBytes, std::string(tokenizer_id));
  TESSERA_CHECK(vocab_size > 0 && vocab_size <= std::numeric_limits<int32_t>::max(),
                std::to_string(vocab_size));
  const TokenDtype dtype = token_dtype_for_vocab(vocab_size);
  const std::vector<std::byte> payload = dtype == TokenDtype::uint16
                                             ? narrow_tokens<uint16_t>(tokens, vocab_size)
                                             : narrow_tokens<uint32_t>(tokens, vocab_size);
  const uint64_t checksum = fnv1a64(payload);
  const Header header = make_header(tokens.size(), dtype, tokenizer_id, vocab_size, checksum);

  auto temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out)
      throw UsageError("cannot write " + temporary.string() + "; check the output directory");
    out.write(reinterpret_cast<const char*>(header.data()),
              static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(payload.data()),
              static_cast<std::streamsize>(payload.size()));
    out.flush();
    if (!out) throw UsageError("writing " + temporary.string() + " failed; is the disk full?");
  }
  std::filesystem::rename(temporary, path);
  return {path, tokens.size(), kShardHeaderBytes + payload.size(), checksum};
}

ShardReader::ShardReader(const std::filesystem::path& path)
    : path_(path), file_(std::make_shared<const MappedFile>(path, "shard", rerun_hint())) {
  const size_t size = file_->size();
  if (size == 0) throw_bad_shard(path, "is empty (0 bytes)");
  if (size < sizeof(kMagic) || std::memcmp(file_->data(), kMagic, sizeof(kMagic)) != 0) {
    throw_bad_shard(path, "is not a tessera shard (no TSRASHRD magic)");
  }
  if (size < kShardHeaderBytes) {
    throw_bad_shard(path, "is truncated: " + std::to_string(size) + " bytes, shorter than its " +
                              std::to_string(kShardHeaderBytes) + "-byte header");
  }
  const std::byte* header = file_->data();
  const auto version = get<uint32_t>(header, kVersionOffset);
  if (version != kShardFormatVersion) {
    throw_bad_shard(path, "has format version " + std::to_string(version) +
                              " but this tessera reads version " +
                              std::to_string(kShardFormatVersion));
  }
  if (get<uint64_t>(header, kHeaderSumOffset) != header_checksum(header)) {
    throw_bad_shard(path, "has a corrupt header (checksum mismatch)");
  }
  const auto dtype = get<uint32_t>(header, kDtypeOffset);
  if (dtype != 2 && dtype != 4)
    throw_bad_shard(path, "has unknown token dtype " + std::to_string(dtype));
  dtype_ = static_cast<TokenDtype>(dtype);
  count_ = get<uint64_t>(header, kCountOffset);
  vocab_size_ = get<uint32_t>(header, kVocabOffset);
  payload_checksum_ = get<uint64_t>(header, kPayloadSumOffset);
  const char* id = reinterpret_cast<const char*>(header + kTokenizerOffset);
  tokenizer_id_.assign(id, strnlen(id, kTokenizerIdBytes));

  // Compare in tokens, not bytes, so that a corrupt count cannot overflow the product.
  const uint64_t payload_bytes = size - kShardHeaderBytes;
  if (payload_bytes % dtype != 0 || payload_bytes / dtype != count_) {
    throw_bad_shard(
        path, std::string(payload_bytes / dtype < count_ ? "is truncated" : "has trailing bytes") +
                  ": header says " + std::to_string(count_) + " tokens of " +
                  std::to_string(dtype) + " bytes but the file holds " +
                  std::to_string(payload_bytes) + " bytes of tokens");
  }
}

std::span<const std::byte> ShardReader::payload() const {
  return {file_->data() + kShardHeaderBytes, file_->size() - kShardHeaderBytes};
}

void ShardReader::read(uint64_t first, uint64_t count, int32_t* out) const {
  TESSERA_CHECK(first <= count_ && count <= count_ - first, "tokens [" + std::to_string(first) +
                                                                ", +" + std::to_string(count) +
                                                                ") of " + std::to_string(count_));
  const size_t width = static_cast<size_t>(dtype_);
  const std::byte* bytes = payload().data() + first * width;
  if (dtype_ == TokenDtype::uint16) {
    widen_tokens<uint16_t>(bytes, count, vocab_size_, out, path_);
  } else {
    widen_tokens<uint32_t>(bytes, count, vocab_size_, out, path_);
  }
}

bool ShardReader::verify_payload() const { return fnv1a64(payload()) == payload_checksum_; }

}  // namespace tessera
