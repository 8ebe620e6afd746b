// A read-only memory mapping of a whole file: how tessera reads files it only looks into (token
// shards, safetensors), without copying them or sizing a buffer from what they claim.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace tessera {

class MappedFile {
 public:
  /// Maps `path`, which must be a regular file (a FIFO planted under its name must not block
  /// the open). UsageError "cannot open WHAT PATH: reason" or "WHAT PATH is not a regular
  /// file", each followed by `fix` ("; re-run ... to rewrite it").
  MappedFile(const std::filesystem::path& path, std::string_view what, std::string_view fix);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tessera
