// MPI for the lifetime of the tessera command: initialised first, finalised last.
//
// Works without a launcher too (Open MPI singleton: one rank). Errors are reported by rank 0
// only when every rank sees the same problem (configuration), and by the failing rank, with its
// number, when one rank fails alone; `abort_job` then ends every rank so none hangs.
#pragma once

namespace tessera {

class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  /// Ends the whole job (every rank) with `status`.
  [[noreturn]] void abort_job(int status) const;

  /// Ends this process with `status` after flushing its output, without MPI_Finalize: for a
  /// library left in a state whose cleanup inside MPI_Finalize would crash (every rank that
  /// exits so must do it alike; the launcher then reports the status).
  [[noreturn]] void exit_without_finalize(int status) const;

 private:
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace tessera
