// Hugging Face's safetensors files (https://huggingface.co/docs/safetensors), read and written
// to the format's spec:
//
//   8 bytes    N, the header's length (little-endian u64)
//   N bytes    a JSON object: for each tensor NAME {"dtype": "F32", "shape": [...],
//              "data_offsets": [BEGIN, END]} (offsets into the data, END exclusive), and
//              optionally "__metadata__": {string: string}; padded with spaces
//   the data   every tensor's bytes, little-endian, row-major: indexed whole, without holes or
//              overlaps
//
// The reader maps the file and checks all of that before handing out a byte: the header's
// length against the file (and 100 MB, the reference implementation's bound), each dtype known,
// each shape's element count times the dtype's size equal to its offsets' span (no overflow),
// the spans tiling the data exactly. A file that breaks a rule is one UsageError naming the
// file and the rule; nothing is allocated or read from a size the file claims.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

class MappedFile;

/// The element types of the format; tessera reads and writes the floating ones it trains with.
enum class SafetensorsDtype { f32, bf16, f16, f64, other };

/// "F32", "BF16", "F16", "F64".
std::string_view safetensors_dtype_name(SafetensorsDtype dtype);

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;  ///< as the header spells it ("F32", "I64", ...)
  SafetensorsDtype dtype = SafetensorsDtype::other;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  ///< byte offsets into the data section
  uint64_t end = 0;
  int64_t elements() const;
};

class SafetensorsReader {
 public:
  /// Maps and validates `path` (see the top of this file).
  explicit SafetensorsReader(const std::filesystem::path& path);
  SafetensorsReader(SafetensorsReader&&) noexcept;
  ~SafetensorsReader();

  const std::filesystem::path& path() const { return path_; }
  /// Every tensor, in the order of their data.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr.
  const SafetensorsTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The tensor's elements as float32: F32 as stored, BF16 and F16 widened exactly, F64
  /// rounded. UsageError for any other dtype, naming the tensor.
  std::vector<float> read_floats(const SafetensorsTensor& tensor) const;

 private:
  std::filesystem::path path_;
  std::unique_ptr<const MappedFile> file_;
  uint64_t data_start_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: its name, shape and the dtype to store it as (F32, BF16 or F16).
struct SafetensorsEntry {
  std::string name;
  std::vector<int64_t> shape;
  SafetensorsDtype dtype = SafetensorsDtype::f32;
  uint64_t data_bytes() const;  ///< of its elements in the file
};

/// Writes a safetensors file one tensor at a time, in the order of `entries`, so that a model
/// larger than memory is written tensor by tensor. The file appears under its name only once
/// finish() has written every tensor (a temporary file beside it, then a rename).
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<SafetensorsEntry> entries,
                    const std::map<std::string, std::string>& metadata);
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  /// The next entry's elements, as float32 (rounded to nearest-even for BF16 and F16).
  void write(std::span<const float> values);
  /// Checks that every entry was written, then renames the file into place.
  void finish();

 private:
  struct Output;
  std::filesystem::path path_, temporary_;
  std::vector<SafetensorsEntry> entries_;
  std::size_t next_ = 0;   ///< the entry write() takes next
  bool finished_ = false;  ///< renamed into place: the destructor leaves it
  std::unique_ptr<Output> out_;
};

}  // namespace tessera
