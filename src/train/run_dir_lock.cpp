#include "train/run_dir_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "core/host_facts.hpp"

namespace tessera {
namespace {

/// The holder's line from the lock file, at most a few hundred bytes of it.
std::string read_holder(int fd) {
  char text[512] = {};
  const ssize_t got = pread(fd, text, sizeof text - 1, 0);
  std::string holder = got > 0 ? std::string(text, static_cast<std::size_t>(got)) : "";
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
  return holder.empty() ? "a process that has not written its name yet" : holder;
}

}  // namespace

RunDirLock::RunDirLock(const std::filesystem::path& run_dir) {
  const std::filesystem::path path = run_dir / ".lock";
  // O_NOFOLLOW and O_NONBLOCK: a link or a FIFO planted as the lock file must neither redirect
  // the write nor block the open.
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd_ < 0) {
    throw UsageError("cannot open the run directory's lock file " + path.string() + " (" +
                     std::strerror(errno) + "); pick a writable run.dir");
  }
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  if (fcntl(fd_, F_SETLK, &whole) != 0) {
    const int reason = errno;
    const std::string holder = read_holder(fd_);
    close(fd_);
    fd_ = -1;
    if (reason == EACCES || reason == EAGAIN) {
      throw UsageError("run.dir " + run_dir.string() + " is in use by another tessera run (" +
                       holder + "); wait for it to end, or give this run its own run.dir");
    }
    throw UsageError("cannot lock " + path.string() + " (" + std::strerror(reason) +
                     "); the file system of run.dir must support POSIX locks");
  }
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string holder = "process " + std::to_string(getpid()) + " on " + host_name() +
                             ", started " + utc_text(now) + "\n";
  // The holder's name is a courtesy to the next run's message: a failure to write it is not one.
  if (ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = pwrite(fd_, holder.data(), holder.size(), 0);
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) close(fd_);  // releases the lock
}

}  // namespace tessera
