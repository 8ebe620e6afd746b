#include "io/data/corpus/byte_stream.hpp"

#include <zlib.h>
#include <zstd.h>

#include <array>
#include <cstring>

#include "core/error.hpp"

namespace tessera {
namespace {

constexpr size_t kInputBlock = 1 << 20;
constexpr std::array<unsigned char, 2> kGzipMagic{0x1f, 0x8b};
constexpr std::array<unsigned char, 4> kZstdMagic{0x28, 0xb5, 0x2f, 0xfd};

bool starts_with(const std::string& bytes, const auto& magic) {
  return bytes.size() >= magic.size() && std::memcmp(bytes.data(), magic.data(), magic.size()) == 0;
}

}  // namespace

// One of the two decoders, whichever the file needs; `between_members` is true after a member
// or frame ended and before the next one starts (the end of the file is allowed only there).
struct ByteStream::Decoder {
  z_stream gzip{};
  bool gzip_ready = false;
  ZSTD_DCtx* zstd = nullptr;
  bool between_members = true;

  ~Decoder() {
    if (gzip_ready) inflateEnd(&gzip);
    if (zstd != nullptr) ZSTD_freeDCtx(zstd);
  }
};

ByteStream::ByteStream(const std::filesystem::path& path)
    : path_(path), file_(std::fopen(path.c_str(), "rb")) {
  if (file_ == nullptr) {
    throw UsageError("input " + path.string() + " cannot be opened (" + std::strerror(errno) +
                     "); check the path and its permissions");
  }
  refill();
  if (starts_with(input_, kGzipMagic)) {
    compression_ = Compression::gzip;
    decoder_ = std::make_unique<Decoder>();
    // 15 + 32: the largest window, with a gzip or zlib header detected automatically.
    if (inflateInit2(&decoder_->gzip, 15 + 32) != Z_OK) corrupt("zlib could not start");
    decoder_->gzip_ready = true;
  } else if (starts_with(input_, kZstdMagic)) {
    compression_ = Compression::zstd;
    decoder_ = std::make_unique<Decoder>();
    decoder_->zstd = ZSTD_createDCtx();
    if (decoder_->zstd == nullptr) corrupt("libzstd could not start");
  }
}

ByteStream::~ByteStream() {
  if (file_ != nullptr) std::fclose(file_);
}

void ByteStream::corrupt(const std::string& what) const {
  const char* kind = compression_ == Compression::gzip ? "gzip" : "zstd";
  throw UsageError("input " + path_.string() + " is not a valid " + kind + " stream (" + what +
                   ", near compressed byte " + std::to_string(file_bytes_read_) +
                   "); the file is damaged or truncated: fetch it again");
}

size_t ByteStream::refill() {
  if (input_at_ > 0) {
    input_.erase(0, input_at_);
    input_at_ = 0;
  }
  if (file_ended_) return 0;
  const size_t old_size = input_.size();
  input_.resize(old_size + kInputBlock);
  const size_t got = std::fread(input_.data() + old_size, 1, kInputBlock, file_);
  input_.resize(old_size + got);
  file_bytes_read_ += got;
  if (got < kInputBlock) {
    if (std::ferror(file_)) {
      throw UsageError("input " + path_.string() + " could not be read (" + std::strerror(errno) +
                       "); check the file system");
    }
    file_ended_ = true;
  }
  return got;
}

size_t ByteStream::read(char* out, size_t capacity) {
  if (compression_ == Compression::none) {
    while (input_at_ == input_.size() && refill() > 0) {
    }
    const size_t n = std::min(capacity, input_.size() - input_at_);
    std::memcpy(out, input_.data() + input_at_, n);
    input_at_ += n;
    return n;
  }
  Decoder& decoder = *decoder_;
  size_t produced = 0;
  while (produced == 0) {
    if (input_at_ == input_.size() && refill() == 0) {
      if (!decoder.between_members) corrupt("it ends in the middle of a compressed block");
      return 0;
    }
    const auto* in = reinterpret_cast<const unsigned char*>(input_.data() + input_at_);
    const size_t available = input_.size() - input_at_;
    if (compression_ == Compression::gzip) {
      z_stream& z = decoder.gzip;
      if (decoder.between_members) {
        inflateReset(&z);
        decoder.between_members = false;
      }
      z.next_in = const_cast<unsigned char*>(in);
      z.avail_in = static_cast<uInt>(std::min<size_t>(available, UINT32_MAX));
      z.next_out = reinterpret_cast<unsigned char*>(out);
      z.avail_out = static_cast<uInt>(std::min<size_t>(capacity, UINT32_MAX));
      const int status = inflate(&z, Z_NO_FLUSH);
      if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
        corrupt(z.msg != nullptr ? z.msg : "inflate failed");
      }
      input_at_ += available - z.avail_in;
      produced = capacity - z.avail_out;
      if (status == Z_STREAM_END) decoder.between_members = true;
    } else {
      ZSTD_inBuffer input{in, available, 0};
      ZSTD_outBuffer output{out, capacity, 0};
      const size_t status = ZSTD_decompressStream(decoder.zstd, &output, &input);
      if (ZSTD_isError(status)) corrupt(ZSTD_getErrorName(status));
      input_at_ += input.pos;
      produced = output.pos;
      decoder.between_members = status == 0;  // 0: a frame is complete
    }
  }
  return produced;
}

}  // namespace tessera
