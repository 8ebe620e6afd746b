#include "io/checkpoint/streaming_writeback.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace tessera::checkpoint_detail {
namespace {

constexpr std::uint64_t kPageBytes = 4096;

}  // namespace

StreamingWriteback::StreamingWriteback(const std::filesystem::path& file,
                                       std::uint64_t window_bytes)
    // Read-only suffices for both calls; the writes themselves go through the writer's descriptor.
    : fd_(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)), window_bytes_(window_bytes) {}

StreamingWriteback::~StreamingWriteback() {
  if (fd_ >= 0) ::close(fd_);
}

void StreamingWriteback::wrote(std::uint64_t offset, std::uint64_t bytes) {
  // Whole pages only: the first and last page of the range may hold a neighbour's bytes.
  const std::uint64_t first = (offset + kPageBytes - 1) / kPageBytes * kPageBytes;
  const std::uint64_t end = (offset + bytes) / kPageBytes * kPageBytes;
  if (fd_ < 0 || end <= first) return;
  const Range range{first, end - first};
  ::sync_file_range(fd_, static_cast<off_t>(range.offset), static_cast<off_t>(range.bytes),
                    SYNC_FILE_RANGE_WRITE);
  in_flight_.push_back(range);
  in_flight_bytes_ += range.bytes;
  while (in_flight_bytes_ - in_flight_.front().bytes >= window_bytes_) {
    const Range oldest = in_flight_.front();
    in_flight_.pop_front();
    in_flight_bytes_ -= oldest.bytes;
    ::sync_file_range(
        fd_, static_cast<off_t>(oldest.offset), static_cast<off_t>(oldest.bytes),
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    ::posix_fadvise(fd_, static_cast<off_t>(oldest.offset), static_cast<off_t>(oldest.bytes),
                    POSIX_FADV_DONTNEED);
  }
}

}  // namespace tessera::checkpoint_detail
