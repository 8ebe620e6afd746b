#include "io/hf_model/safetensors.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/half_floats.hpp"
#include "core/mapped_file.hpp"

namespace tessera {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's bound
constexpr std::size_t kConvertBlock = 1 << 20;     // elements converted per write

struct DtypeInfo {
  std::string_view name;
  int bytes;
  SafetensorsDtype dtype;
};

constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {"F32", 4, SafetensorsDtype::f32},
    {"BF16", 2, SafetensorsDtype::bf16},
    {"F16", 2, SafetensorsDtype::f16},
    {"F64", 8, SafetensorsDtype::f64},
    {"BOOL", 1, SafetensorsDtype::other},
    {"U8", 1, SafetensorsDtype::other},
    {"I8", 1, SafetensorsDtype::other},
    {"F8_E5M2", 1, SafetensorsDtype::other},
    {"F8_E4M3", 1, SafetensorsDtype::other},
    {"I16", 2, SafetensorsDtype::other},
    {"U16", 2, SafetensorsDtype::other},
    {"I32", 4, SafetensorsDtype::other},
    {"U32", 4, SafetensorsDtype::other},
    {"I64", 8, SafetensorsDtype::other},
    {"U64", 8, SafetensorsDtype::other},
}};

const DtypeInfo* dtype_info(std::string_view name) {
  for (const auto& info : kDtypes) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

int dtype_bytes(SafetensorsDtype dtype) { return dtype_info(safetensors_dtype_name(dtype))->bytes; }

[[noreturn]] void throw_bad_file(const std::filesystem::path& path, const std::string& problem) {
  throw UsageError("safetensors file " + path.string() + " " + problem +
                   "; export it again or fetch an intact copy");
}

uint64_t checked_u64(const nlohmann::json& value, const std::filesystem::path& path,
                     const std::string& what) {
  if (!value.is_number_unsigned()) throw_bad_file(path, "has " + what + " that is not a size");
  return value.get<uint64_t>();
}

SafetensorsTensor parse_entry(const std::string& name, const nlohmann::json& entry,
                              const std::filesystem::path& path) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object() || entry.size() != 3 || !entry.contains("dtype") ||
      !entry.contains("shape") || !entry.contains("data_offsets")) {
    throw_bad_file(path,
                   "has " + where + " without exactly the fields dtype, shape and data_offsets");
  }
  SafetensorsTensor tensor;
  tensor.name = name;
  if (!entry["dtype"].is_string()) throw_bad_file(path, "has " + where + " with a dtype not text");
  tensor.dtype_name = entry["dtype"].get<std::string>();
  const DtypeInfo* info = dtype_info(tensor.dtype_name);
  if (info == nullptr) {
    throw_bad_file(path, "has " + where + " of unknown dtype '" + tensor.dtype_name + "'");
  }
  tensor.dtype = info->dtype;
  if (!entry["shape"].is_array()) throw_bad_file(path, "has " + where + " whose shape is no list");
  uint64_t elements = 1;
  for (const auto& dim : entry["shape"]) {
    const uint64_t size = checked_u64(dim, path, where + " a dimension");
    if (size > (uint64_t{1} << 62) || __builtin_mul_overflow(elements, size, &elements)) {
      throw_bad_file(path, "has " + where + " with more elements than any file holds");
    }
    tensor.shape.push_back(static_cast<int64_t>(size));
  }
  const auto& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    throw_bad_file(path, "has " + where + " whose data_offsets are not [begin, end]");
  }
  tensor.begin = checked_u64(offsets[0], path, where + " an offset");
  tensor.end = checked_u64(offsets[1], path, where + " an offset");
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(info->bytes), &bytes) ||
      tensor.end < tensor.begin || tensor.end - tensor.begin != bytes) {
    throw_bad_file(path, "has " + where + " whose data_offsets [" + std::to_string(tensor.begin) +
                             ", " + std::to_string(tensor.end) + ") do not hold its shape of " +
                             info->name.data() + " elements");
  }
  return tensor;
}

}  // namespace

std::string_view safetensors_dtype_name(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::f32:
      return "F32";
    case SafetensorsDtype::bf16:
      return "BF16";
    case SafetensorsDtype::f16:
      return "F16";
    case SafetensorsDtype::f64:
      return "F64";
    case SafetensorsDtype::other:
      break;
  }
  TESSERA_CHECK(false, "no single name for the other dtypes");
}

int64_t SafetensorsTensor::elements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path)
    : path_(path),
      file_(std::make_unique<const MappedFile>(path, "safetensors file",
                                               "; name a model.safetensors file")) {
  const uint64_t size = file_->size();
  if (size < 8) {
    throw_bad_file(path, "is " + std::to_string(size) +
                             " bytes, too short for the 8-byte length that begins the format");
  }
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file_->data(), 8);
  if (header_bytes > kMaxHeaderBytes || header_bytes > size - 8) {
    throw_bad_file(path, "claims a header of " + std::to_string(header_bytes) +
                             " bytes in a file of " + std::to_string(size) + " (truncated?)");
  }
  data_start_ = 8 + header_bytes;
  const std::string_view header(reinterpret_cast<const char*>(file_->data()) + 8, header_bytes);
  // Names must be unique: a parser callback sees every key of the top-level object.
  std::set<std::string> names;
  bool duplicate = false;
  const nlohmann::json json = nlohmann::json::parse(
      header,
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
          duplicate |= !names.insert(parsed.get<std::string>()).second;
        }
        return true;
      },
      /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || header.empty() || header.front() != '{') {
    throw_bad_file(path, "has a header that is not a JSON object");
  }
  if (duplicate) throw_bad_file(path, "names a tensor twice in its header");
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw_bad_file(path, "has __metadata__ that is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) throw_bad_file(path, "has __metadata__ '" + key + "' not text");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    tensors_.push_back(parse_entry(name, entry, path));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& tensor : tensors_) {
    if (tensor.begin != expected) {
      throw_bad_file(path, "has tensor '" + tensor.name + "' at byte " +
                               std::to_string(tensor.begin) + " of the data where " +
                               std::to_string(expected) + " was due (a hole or an overlap)");
    }
    expected = tensor.end;
  }
  if (expected != size - data_start_) {
    throw_bad_file(path, "has " + std::to_string(size - data_start_) +
                             " bytes of data where its header indexes " + std::to_string(expected));
  }
}

SafetensorsReader::SafetensorsReader(SafetensorsReader&&) noexcept = default;
SafetensorsReader::~SafetensorsReader() = default;

const SafetensorsTensor* SafetensorsReader::find(std::string_view name) const {
  for (const auto& tensor : tensors_) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

std::vector<float> SafetensorsReader::read_floats(const SafetensorsTensor& tensor) const {
  const std::byte* bytes = file_->data() + data_start_ + tensor.begin;
  const auto count = static_cast<std::size_t>(tensor.elements());
  std::vector<float> values(count);
  if (count == 0) return values;  // an empty tensor: no bytes to read (memcpy's null pointer)
  switch (tensor.dtype) {
    case SafetensorsDtype::f32:
      std::memcpy(values.data(), bytes, count * sizeof(float));
      break;
    case SafetensorsDtype::bf16:
    case SafetensorsDtype::f16:
      for (std::size_t i = 0; i < count; ++i) {
        uint16_t bits = 0;
        std::memcpy(&bits, bytes + 2 * i, 2);
        values[i] =
            tensor.dtype == SafetensorsDtype::bf16 ? float_from_bf16(bits) : float_from_f16(bits);
      }
      break;
    case SafetensorsDtype::f64:
      for (std::size_t i = 0; i < count; ++i) {
        double value = 0;
        std::memcpy(&value, bytes + 8 * i, 8);
        values[i] = static_cast<float>(value);
      }
      break;
    case SafetensorsDtype::other:
      throw UsageError("tensor '" + tensor.name + "' of " + path_.string() + " is " +
                       tensor.dtype_name + "; tessera reads F32, BF16, F16 and F64 weights");
  }
  return values;
}

namespace {

/// The header as written: offsets in entry order, padded with spaces to 8-byte alignment.
std::string make_header(const std::vector<SafetensorsEntry>& entries,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& entry : entries) {
    const uint64_t end = offset + entry.data_bytes();
    TESSERA_CHECK(!header.contains(entry.name), "tensor " + entry.name + " written twice");
    header[entry.name] = {{"dtype", safetensors_dtype_name(entry.dtype)},
                          {"shape", entry.shape},
                          {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  return text;
}

}  // namespace

uint64_t SafetensorsEntry::data_bytes() const {
  uint64_t elements = 1;
  for (int64_t dim : shape) elements *= static_cast<uint64_t>(dim);
  return elements * static_cast<uint64_t>(dtype_bytes(dtype));
}

struct SafetensorsWriter::Output {
  std::ofstream stream;
};

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path,
                                     std::vector<SafetensorsEntry> entries,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), entries_(std::move(entries)), out_(std::make_unique<Output>()) {
  for (const auto& entry : entries_) {
    TESSERA_CHECK(entry.dtype != SafetensorsDtype::other && entry.dtype != SafetensorsDtype::f64,
                  "tensors are written as F32, BF16 or F16: " + entry.name);
  }
  temporary_ = path_;
  temporary_ += ".tmp";
  const std::string header = make_header(entries_, metadata);
  out_->stream.open(temporary_, std::ios::binary | std::ios::trunc);
  const uint64_t length = header.size();
  out_->stream.write(reinterpret_cast<const char*>(&length), 8);
  out_->stream.write(header.data(), static_cast<std::streamsize>(header.size()));
  if (!out_->stream) {
    throw UsageError("cannot write " + temporary_.string() +
                     "; check that the directory is writable and has space");
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (!finished_) {  // abandoned or failed: leave nothing behind
    out_->stream.close();
    std::error_code ignored;
    std::filesystem::remove(temporary_, ignored);
  }
}

void SafetensorsWriter::write(std::span<const float> values) {
  TESSERA_CHECK(next_ < entries_.size(), "more tensors written than declared");
  const SafetensorsEntry& entry = entries_[next_++];
  int64_t elements = 1;
  for (int64_t dim : entry.shape) elements *= dim;
  TESSERA_CHECK(static_cast<int64_t>(values.size()) == elements,
                entry.name + ": " + std::to_string(values.size()) + " values for " +
                    std::to_string(elements) + " elements");
  if (entry.dtype == SafetensorsDtype::f32) {
    out_->stream.write(reinterpret_cast<const char*>(values.data()),
                       static_cast<std::streamsize>(values.size_bytes()));
  } else {
    std::vector<uint16_t> narrow;
    for (std::size_t first = 0; first < values.size(); first += kConvertBlock) {
      const std::size_t count = std::min(kConvertBlock, values.size() - first);
      narrow.resize(count);
      for (std::size_t i = 0; i < count; ++i) {
        narrow[i] = entry.dtype == SafetensorsDtype::bf16 ? bf16_from_float(values[first + i])
                                                          : f16_from_float(values[first + i]);
      }
      out_->stream.write(reinterpret_cast<const char*>(narrow.data()),
                         static_cast<std::streamsize>(count * 2));
    }
  }
  if (!out_->stream) {
    throw UsageError("writing " + temporary_.string() + " failed; is the disk full?");
  }
}

void SafetensorsWriter::finish() {
  TESSERA_CHECK(next_ == entries_.size(),
                std::to_string(entries_.size() - next_) + " declared tensors were not written");
  out_->stream.close();
  if (!out_->stream) {
    throw UsageError("writing " + temporary_.string() + " failed; is the disk full?");
  }
  std::filesystem::rename(temporary_, path_);
  finished_ = true;
}

}  // namespace tessera
