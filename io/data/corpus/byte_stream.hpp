// A corpus file's bytes, decompressed as they are read: gzip (zlib; concatenated members, as
// pigz and bgzip write them) and zstd (libzstd; concatenated frames) are recognised by their
// magic numbers, anything else is read as it is.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace tessera {

enum class Compression { none, gzip, zstd };

class ByteStream {
 public:
  /// UsageError naming the file when it cannot be opened.
  explicit ByteStream(const std::filesystem::path& path);
  ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  /// Up to `capacity` decompressed bytes into `out`; 0 only at the end of the file. UsageError
  /// naming the file and the byte offset for a corrupt or truncated compressed stream.
  size_t read(char* out, size_t capacity);
  /// Bytes of the file itself consumed so far (compressed bytes, for progress).
  uint64_t file_bytes_read() const { return file_bytes_read_; }
  Compression compression() const { return compression_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Decoder;
  size_t refill();
  [[noreturn]] void corrupt(const std::string& what) const;

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  Compression compression_ = Compression::none;
  std::string input_;    // compressed bytes read from the file, not yet decoded
  size_t input_at_ = 0;  // first undecoded byte of input_
  bool file_ended_ = false;
  uint64_t file_bytes_read_ = 0;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace tessera
