// StreamingWriteback: keeps the page cache that a large file write dirties to about one window
// in flight, recycling its pages instead of taking fresh ones. Not part of the public API.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>

namespace tessera::checkpoint_detail {

/// Told each byte range that this process alone has just written into `file` (through any
/// descriptor: here, DirectWriter's buffered one), it starts the kernel's writeback of the range at
/// once; once more than a window is in flight, it waits for the oldest ranges' writeback and drops
/// their pages from the page cache.
///
/// Why: a checkpoint's writes copy into the page cache, and a new file's pages come from free
/// memory; where a process (the trainer) holds most of the memory freed last, that memory is
/// fresh, which on a VM costs a host page fault per page (0.35-0.5 GB/s). Pages dropped after
/// their writeback go back to the free lists, and the next writes take them again
/// (doc/performance.md, "Checkpoints": bench/bench_checkpoint.py before and after).
///
/// Only ranges that no other process writes into may be given: a page dropped while another
/// rank has yet to write part of it would have to be read back from the disk first. Pages at a
/// range's ends, which a neighbour may share, are never dropped. Failures are ignored: this only
/// schedules what the final fsync does anyway, and where sync_file_range is missing the pages
/// stay cached (the data reaches the disk all the same).
class StreamingWriteback {
 public:
  static constexpr std::uint64_t kDefaultWindowBytes = std::uint64_t{64} << 20;

  explicit StreamingWriteback(const std::filesystem::path& file,
                              std::uint64_t window_bytes = kDefaultWindowBytes);
  StreamingWriteback(const StreamingWriteback&) = delete;
  StreamingWriteback& operator=(const StreamingWriteback&) = delete;
  ~StreamingWriteback();

  /// After this process, and no other, wrote [offset, offset + bytes) of the file.
  void wrote(std::uint64_t offset, std::uint64_t bytes);

 private:
  struct Range {
    std::uint64_t offset, bytes;
  };
  int fd_ = -1;
  std::uint64_t window_bytes_;
  std::deque<Range> in_flight_;  // writeback started, pages not yet dropped; oldest first
  std::uint64_t in_flight_bytes_ = 0;
};

}  // namespace tessera::checkpoint_detail
