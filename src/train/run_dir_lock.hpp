// One run per run directory: two runs started in the same run.dir would interleave their
// metrics.jsonl and overwrite each other's checkpoints.
#pragma once

#include <filesystem>

namespace tessera {

/// An advisory lock on `run_dir/.lock` (a POSIX record lock, which NFS and Lustre pass between
/// hosts), held while the object lives and released by the system when the process ends, however
/// it ends. The file names the holder: host, process id and start time.
class RunDirLock {
 public:
  /// Takes the lock, or throws UsageError naming the run that holds it.
  explicit RunDirLock(const std::filesystem::path& run_dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace tessera
