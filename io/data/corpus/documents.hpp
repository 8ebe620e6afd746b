// The documents of a corpus: which files the inputs name and what a document is in each.
//
//  * A plain-text file is one document.
//  * A JSON Lines file (.jsonl, .ndjson or .json, before any .gz/.zst) holds one document per
//    non-empty line: a JSON object whose string field `text_key` is the text (OpenLM, RedPajama,
//    FineWeb and The Pile use "text").
//  * Either may be gzip or zstd compressed (ByteStream recognises which).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/data/corpus/byte_stream.hpp"

namespace tessera {

/// The files the inputs name, in a fixed order: files as given; directories walked, their
/// regular files sorted by path, hidden ones (".name") left out; `list_file` (if not empty)
/// adds one path per line, relative paths taken from its own directory. UsageError for a path
/// that does not exist, an unreadable list, or no files at all.
std::vector<std::filesystem::path> expand_inputs(const std::vector<std::filesystem::path>& inputs,
                                                 const std::filesystem::path& list_file);

/// Whether `path` is JSON Lines by its name (its extension before any .gz or .zst).
bool is_json_lines(const std::filesystem::path& path);

/// Reads one input's documents in order. Reading a document's raw bytes is cheap (a line or the
/// whole file); text() parses it, so ranks can pass over documents others encode.
class DocumentReader {
 public:
  DocumentReader(const std::filesystem::path& path, std::string text_key);

  /// The next document's raw bytes (a JSON line without its '\n', or the whole plain file);
  /// false at the end of the file.
  bool next(std::string& raw);
  /// The text of the document next() last returned. UsageError naming the file and line for
  /// invalid JSON, a line that is not an object, or one without a string field `text_key`.
  std::string text(const std::string& raw) const;

  /// 1-based line of the document next() last returned (1 for a plain file).
  uint64_t line() const { return line_; }
  uint64_t file_bytes_read() const { return stream_.file_bytes_read(); }

 private:
  bool fill();

  ByteStream stream_;
  std::string text_key_;
  bool json_lines_;
  std::string buffer_;  // decompressed bytes not yet returned
  size_t buffer_at_ = 0;
  bool ended_ = false;
  uint64_t line_ = 0;
};

}  // namespace tessera
