#include "io/checkpoint/direct_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace tessera::checkpoint_detail {
namespace {

constexpr std::uint64_t kStagingBytes = StagingPool::kStagingBytes;

/// Two requests in flight keep the device busy while a worker copies; more only add memory.
constexpr int kStagingWorkers = 2;

/// Runs shorter than this go through the page cache: a column block's rows are a few KiB
/// apart, and a direct transfer per row is one synchronous request to the device per row
/// (8 KiB rows written direct: 0.23 GB/s at tp=2, bench_checkpoint), while the page cache
/// merges them into large requests.
constexpr std::uint64_t kDirectMinBytes = std::uint64_t{64} << 10;

std::uint64_t align_down(std::uint64_t value) {
  return value / kDirectAlignment * kDirectAlignment;
}
std::uint64_t align_up(std::uint64_t value) { return align_down(value + kDirectAlignment - 1); }

using StagingBuffer = std::unique_ptr<char, void (*)(void*)>;

StagingBuffer aligned_staging() {
  void* memory = nullptr;
  if (posix_memalign(&memory, kDirectAlignment, kStagingBytes) != 0) throw std::bad_alloc();
  return {static_cast<char*>(memory), std::free};
}

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& file, int error) {
  throw std::runtime_error(what + " " + file.string() + ": " + std::strerror(error));
}

int open_or_throw(const std::filesystem::path& file, int flags) {
  const int fd = ::open(file.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail("cannot open", file, errno);
  return fd;
}

/// -1 where the file system does not take O_DIRECT (EINVAL: tmpfs, some FUSE mounts).
int open_direct(const std::filesystem::path& file, int flags) {
  return ::open(file.c_str(), flags | O_DIRECT | O_CLOEXEC | O_NOFOLLOW);
}

void write_all(int fd, const char* data, std::uint64_t bytes, std::uint64_t offset,
               const std::filesystem::path& file) {
  while (bytes > 0) {
    const ssize_t done = ::pwrite(fd, data, bytes, static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) fail("writing", file, done < 0 ? errno : EIO);
    data += done;
    bytes -= static_cast<std::uint64_t>(done);
    offset += static_cast<std::uint64_t>(done);
  }
}

/// Reads up to `bytes`, fewer only where the file ends. A direct read that returns less than
/// asked stops at an unaligned place, which only the end of the file can be.
std::uint64_t read_up_to(int fd, char* data, std::uint64_t bytes, std::uint64_t offset,
                         const std::filesystem::path& file) {
  std::uint64_t total = 0;
  while (total < bytes) {
    const ssize_t done =
        ::pread(fd, data + total, bytes - total, static_cast<off_t>(offset + total));
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) fail("reading", file, errno);
    if (done == 0) break;
    total += static_cast<std::uint64_t>(done);
    if (total % kDirectAlignment != 0) break;
  }
  return total;
}

/// The end of `run` in the file; throws where it lies past what a file offset can hold (an
/// offset a damaged file's metadata gave), before any arithmetic on it can wrap around.
std::uint64_t end_of(const ByteRun& run, const std::filesystem::path& file) {
  constexpr auto kMaxOffset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
  if (run.bytes > kMaxOffset || run.file_offset > kMaxOffset - run.bytes) {
    throw std::runtime_error("byte " + std::to_string(run.file_offset) + " of " + file.string() +
                             " lies past the largest file offset");
  }
  return run.file_offset + run.bytes;
}

[[noreturn]] void ends_early(const std::filesystem::path& file, std::uint64_t end) {
  throw std::runtime_error("file " + file.string() + " ends before byte " + std::to_string(end) +
                           " (truncated)");
}

/// Odometer over the leading dimensions of a block: false once every index wrapped around.
bool advance(std::vector<int64_t>& index, const std::vector<int64_t>& limit) {
  for (std::size_t d = index.size(); d-- > 0;) {
    if (++index[d] < limit[d]) return true;
    index[d] = 0;
  }
  return false;
}

}  // namespace

void for_each_run(std::uint64_t storage, const std::vector<int64_t>& global_shape,
                  const std::vector<int64_t>& local_shape,
                  const std::vector<int64_t>& global_offset,
                  const std::function<void(const ByteRun&)>& each) {
  if (std::any_of(local_shape.begin(), local_shape.end(), [](int64_t n) { return n == 0; })) {
    return;
  }
  const std::size_t dims = global_shape.size();
  std::vector<std::uint64_t> stride(dims, 1);  // elements, row-major
  for (std::size_t d = dims; d-- > 1;) {
    stride[d - 1] = stride[d] * static_cast<std::uint64_t>(global_shape[d]);
  }
  // The run spans dimension `split` partly and every later one whole.
  std::size_t split = dims == 0 ? 0 : dims - 1;
  while (split > 0 && local_shape[split] == global_shape[split]) --split;
  const std::uint64_t run_elements =
      dims == 0 ? 1 : static_cast<std::uint64_t>(local_shape[split]) * stride[split];
  const std::vector<int64_t> outer(local_shape.begin(),
                                   local_shape.begin() + static_cast<std::ptrdiff_t>(split));
  std::vector<int64_t> index(split, 0);
  std::uint64_t buffer_element = 0;
  do {
    std::uint64_t element =
        dims == 0 ? 0 : static_cast<std::uint64_t>(global_offset[split]) * stride[split];
    for (std::size_t d = 0; d < split; ++d) {
      element += static_cast<std::uint64_t>(global_offset[d] + index[d]) * stride[d];
    }
    each({storage + element * sizeof(float), buffer_element * sizeof(float),
          run_elements * sizeof(float)});
    buffer_element += run_elements;
  } while (advance(index, outer));
}

struct StagingPool::State {
  std::mutex mutex;
  std::condition_variable queued;    ///< a job, or the end, for the workers
  std::condition_variable finished;  ///< a job ran (or was skipped), for wait_for() and drain()
  std::deque<std::function<void(char*)>> jobs;
  std::uint64_t submitted = 0;  ///< tickets handed out: jobs 1..submitted
  std::uint64_t taken = 0;      ///< jobs taken off the queue, in ticket order
  std::set<std::uint64_t> running;
  bool ending = false;
  std::exception_ptr failure;  ///< the first since the last drain
  std::vector<StagingBuffer> buffers;
  std::vector<std::thread> workers;

  /// Every job up to this ticket has run or been skipped (jobs are taken in ticket order, so
  /// only the running ones can be unfinished below the last taken).
  std::uint64_t finished_through() const { return running.empty() ? taken : *running.begin() - 1; }

  void work(char* staging) {
    std::unique_lock lock(mutex);
    for (;;) {
      queued.wait(lock, [this] { return ending || !jobs.empty(); });
      if (jobs.empty()) return;
      auto job = std::move(jobs.front());
      jobs.pop_front();
      const std::uint64_t ticket = ++taken;
      if (failure) {
        finished.notify_all();
        continue;
      }
      running.insert(ticket);
      lock.unlock();
      std::exception_ptr failed;
      try {
        job(staging);
      } catch (...) {
        failed = std::current_exception();
      }
      lock.lock();
      running.erase(ticket);
      if (failed && !failure) failure = failed;
      finished.notify_all();
    }
  }

  /// Lets the workers run what is queued, then joins them.
  void stop() {
    {
      std::lock_guard lock(mutex);
      ending = true;
    }
    queued.notify_all();
    for (std::thread& worker : workers) worker.join();
  }
};

StagingPool::StagingPool() = default;

StagingPool::~StagingPool() {
  if (state_) state_->stop();
}

std::uint64_t StagingPool::submit(std::function<void(char* staging)> job) {
  if (!state_) {
    state_ = std::make_unique<State>();
    try {
      for (int i = 0; i < kStagingWorkers; ++i) state_->buffers.push_back(aligned_staging());
      for (StagingBuffer& buffer : state_->buffers) {
        state_->workers.emplace_back(&State::work, state_.get(), buffer.get());
      }
    } catch (...) {
      // Out of memory or threads (a process limit): the workers made so far end, and the
      // caller reports the failure.
      state_->stop();
      state_.reset();
      throw;
    }
  }
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(state_->mutex);
    state_->jobs.push_back(std::move(job));
    ticket = ++state_->submitted;
  }
  state_->queued.notify_one();
  return ticket;
}

std::uint64_t StagingPool::submitted() const {
  if (!state_) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->submitted;
}

void StagingPool::wait_for(std::uint64_t ticket) {
  if (!state_) return;
  std::unique_lock lock(state_->mutex);
  state_->finished.wait(lock, [&] { return state_->finished_through() >= ticket; });
}

void StagingPool::drain() {
  if (!state_) return;
  std::unique_lock lock(state_->mutex);
  state_->finished.wait(lock, [this] { return state_->finished_through() == state_->submitted; });
  if (std::exception_ptr failure = std::exchange(state_->failure, nullptr)) {
    std::rethrow_exception(failure);
  }
}

DirectFile::DirectFile(const std::filesystem::path& file, int access)
    : path_(file), buffered_(open_or_throw(file, access)), direct_(open_direct(file, access)) {}

DirectFile::Descriptor::~Descriptor() {
  if (fd >= 0) ::close(fd);
}

DirectWriter::DirectWriter(const std::filesystem::path& file)
    : file_(file, O_WRONLY), writeback_(file) {}

void DirectWriter::write_buffered(std::uint64_t offset, const char* data, std::uint64_t bytes) {
  write_all(file_.buffered(), data, bytes, offset, file_.path());
}

void DirectWriter::write(const ByteRun& run, const char* block) {
  const char* data = block + run.buffer_offset;
  const std::uint64_t begin = run.file_offset;
  const std::uint64_t end = end_of(run, file_.path());
  if (file_.direct() < 0 || run.bytes < kDirectMinBytes) {
    write_buffered(begin, data, run.bytes);
    writeback_.wrote(begin, run.bytes);
    return;
  }
  // [begin, first) and [last, end) share their pages with whatever lies beside the run.
  const std::uint64_t first = std::min(align_up(begin), end);
  const std::uint64_t last = std::max(align_down(end), first);
  write_buffered(begin, data, first - begin);
  for (std::uint64_t at = first; at < last; at += kStagingBytes) {
    const std::uint64_t piece = std::min(kStagingBytes, last - at);
    pool_.submit([this, source = data + (at - begin), piece, at](char* staging) {
      std::memcpy(staging, source, piece);
      write_all(file_.direct(), staging, piece, at, file_.path());
    });
  }
  write_buffered(last, data + (last - begin), end - last);
}

std::uint64_t DirectWriter::queued() const { return pool_.submitted(); }

void DirectWriter::wait_for(std::uint64_t mark) { pool_.wait_for(mark); }

void DirectWriter::finish() { pool_.drain(); }

DirectReader::DirectReader(const std::filesystem::path& file) : file_(file, O_RDONLY) {}

void DirectReader::read_buffered(std::uint64_t offset, char* data, std::uint64_t bytes) {
  if (read_up_to(file_.buffered(), data, bytes, offset, file_.path()) != bytes) {
    ends_early(file_.path(), offset + bytes);
  }
}

void DirectReader::read(const ByteRun& run, char* block, const Landed& landed) {
  char* data = block + run.buffer_offset;
  const std::uint64_t begin = run.file_offset;
  const std::uint64_t end = end_of(run, file_.path());
  if (file_.direct() < 0 || run.bytes < kDirectMinBytes) {
    read_buffered(begin, data, run.bytes);
    if (landed) landed(data, begin, run.bytes);
    return;
  }
  const std::uint64_t last = align_up(end);
  for (std::uint64_t at = align_down(begin); at < last; at += kStagingBytes) {
    pool_.submit([this, data, begin, end, last, at, landed](char* staging) {
      const std::uint64_t wanted = std::min(kStagingBytes, last - at);
      const std::uint64_t got = read_up_to(file_.direct(), staging, wanted, at, file_.path());
      const std::uint64_t from = std::max(at, begin);
      const std::uint64_t to = std::min(at + got, end);
      if (to < std::min(at + wanted, end)) ends_early(file_.path(), end);
      std::memcpy(data + (from - begin), staging + (from - at), to - from);
      // While the bytes are in this core's cache.
      if (landed) landed(data + (from - begin), from, to - from);
    });
  }
}

std::uint64_t DirectReader::queued() const { return pool_.submitted(); }

void DirectReader::wait_for(std::uint64_t mark) { pool_.wait_for(mark); }

void DirectReader::finish() { pool_.drain(); }

}  // namespace tessera::checkpoint_detail
