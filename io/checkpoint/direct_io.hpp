// Raw tensor bytes between a rank's buffers and a checkpoint file's contiguous datasets, past
// the page cache (O_DIRECT) where the file system allows it. Not part of the public API.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "io/checkpoint/streaming_writeback.hpp"

namespace tessera::checkpoint_detail {

/// One contiguous piece of a block: `bytes` at `file_offset` in the file, at `buffer_offset`
/// in the block's row-major buffer.
struct ByteRun {
  std::uint64_t file_offset = 0;
  std::uint64_t buffer_offset = 0;
  std::uint64_t bytes = 0;
};

/// Calls `each` with every run of float32 block (`local_shape` at `global_offset`) of a tensor
/// of `global_shape` stored contiguously in row-major order from byte `storage`, in file order.
/// A block that spans every dimension but its first is one run; a column block, one per row.
void for_each_run(std::uint64_t storage, const std::vector<int64_t>& global_shape,
                  const std::vector<int64_t>& local_shape,
                  const std::vector<int64_t>& global_offset,
                  const std::function<void(const ByteRun&)>& each);

/// The alignment of O_DIRECT transfers (offsets, lengths and memory) and of the datasets a
/// checkpoint file places for them (H5Pset_alignment).
inline constexpr std::uint64_t kDirectAlignment = 4096;

/// Worker threads, each with its own aligned staging buffer, that run queued transfers of a
/// file's whole pages in order of submission, two at a time: the device always has the next
/// request (one rank's blocks are many runs of a few MiB each: waiting for each run's last
/// transfer before starting the next idled the device between runs, which cost 4- and 8-rank
/// saves a third of their rate), and one worker's copy overlaps the other's transfer. Threads
/// and buffers are made at the first submission, so a rank with nothing to move makes none.
class StagingPool {
 public:
  /// The largest transfer one job moves: large enough that a transfer costs the device's time,
  /// not the system call's; small enough to be nothing next to the trainer's memory.
  static constexpr std::uint64_t kStagingBytes = std::uint64_t{8} << 20;

  StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;
  /// Waits for the queued jobs (their failures are dropped: call drain() to see them).
  ~StagingPool();

  /// Queues `job`, which a worker runs with its staging buffer (kStagingBytes, aligned), and
  /// returns its ticket: 1 for the first job, then one more for each. Once a job has failed,
  /// later ones are skipped. Throws std::bad_alloc if the buffers cannot be made.
  std::uint64_t submit(std::function<void(char* staging)> job);
  /// The last ticket handed out (0 before the first job).
  std::uint64_t submitted() const;
  /// Waits until every job up to `ticket` has run or been skipped (their failures are left
  /// for drain()): so the caller can use what they moved while later jobs go on.
  void wait_for(std::uint64_t ticket);
  /// Waits until every queued job has run; rethrows the first failure since the last drain.
  void drain();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// One open file for direct transfers: a descriptor through the page cache, and one with
/// O_DIRECT where the file system takes it.
class DirectFile {
 public:
  /// Opens `file` with `access` (O_RDONLY or O_WRONLY; it must exist); throws
  /// std::runtime_error if it cannot.
  DirectFile(const std::filesystem::path& file, int access);

  const std::filesystem::path& path() const { return path_; }
  int buffered() const { return buffered_.fd; }
  /// -1 where the file system refuses O_DIRECT (EINVAL: tmpfs, some FUSE mounts).
  int direct() const { return direct_.fd; }

 private:
  struct Descriptor {
    int fd = -1;
    explicit Descriptor(int opened) : fd(opened) {}
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    ~Descriptor();
  };
  std::filesystem::path path_;
  Descriptor buffered_;
  Descriptor direct_;
};

/// Why: through the page cache, a checkpoint's bytes are copied once more and, on a VM, every
/// fresh page of cache costs a host page fault; the disk's rate then varies 4x from minute to
/// minute (bench/bench_checkpoint.py, doc/performance.md "Checkpoints"). O_DIRECT moves them
/// from a small aligned staging buffer straight to the device, at the disk's own rate.
///
/// The whole pages of a run go direct; the partial pages at its ends, which a neighbour's run
/// may share, go through the page cache (pwrite of just those bytes), and so does everything
/// on a file system that refuses O_DIRECT (tmpfs), with StreamingWriteback recycling the cache.
/// A page is never written both ways: a run's whole pages hold its bytes alone.
class DirectWriter {
 public:
  /// Opens `file` (which exists) for writing; throws std::runtime_error if it cannot.
  explicit DirectWriter(const std::filesystem::path& file);

  /// Writes `run` of `block`, whose bytes must stay as they are until finish(): its whole
  /// pages are queued, the rest written at once. Throws std::runtime_error naming the system's
  /// error of what it wrote at once (finish() reports the queued pages').
  void write(const ByteRun& run, const char* block);
  /// A mark of what is queued so far, for wait_for().
  std::uint64_t queued() const;
  /// Waits until what was queued by `mark` is written (or skipped after a failure, which
  /// finish() reports): its buffers may then be reused while later writes go on.
  void wait_for(std::uint64_t mark);
  /// Waits for the queued writes; throws std::runtime_error if one failed.
  void finish();

 private:
  void write_buffered(std::uint64_t offset, const char* data, std::uint64_t bytes);

  DirectFile file_;
  StreamingWriteback writeback_;  ///< of what goes through the page cache
  StagingPool pool_;              ///< the direct writes
};

/// The same for reads: the whole pages covering a run are read direct into a staging buffer
/// and the run's bytes copied out, queued as the writes are; runs shorter than a few pages (a
/// column block's rows), and every run where O_DIRECT is refused, are read through the page
/// cache at once.
class DirectReader {
 public:
  explicit DirectReader(const std::filesystem::path& file);

  /// Whether reads bypass the page cache (then a readahead hint is wasted).
  bool direct() const { return file_.direct() >= 0; }
  /// The descriptor of buffered reads (for readahead hints).
  int descriptor() const { return file_.buffered(); }
  /// Called with each piece of a run once its bytes are in the block: where they are, where
  /// they lie in the file and how many; on a worker thread, or on the caller's.
  using Landed =
      std::function<void(const char* bytes, std::uint64_t file_offset, std::uint64_t count)>;

  /// Reads `run` into `block`, complete once finish() returns, calling `landed` (if any) with
  /// its pieces; throws std::runtime_error if the file ends before it or the system fails
  /// (here for what it reads at once, from finish() for the queued pieces).
  void read(const ByteRun& run, char* block, const Landed& landed = {});
  /// A mark of what is queued so far, for wait_for().
  std::uint64_t queued() const;
  /// Waits until what was queued by `mark` has landed (or was skipped after a failure, which
  /// finish() reports), while later reads go on.
  void wait_for(std::uint64_t mark);
  /// Waits for the queued reads; throws std::runtime_error if one failed.
  void finish();

 private:
  void read_buffered(std::uint64_t offset, char* data, std::uint64_t bytes);

  DirectFile file_;
  StagingPool pool_;  ///< the direct reads
};

}  // namespace tessera::checkpoint_detail
