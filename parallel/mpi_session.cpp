#include "parallel/mpi_session.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace tessera {
namespace {

/// Open MPI's nonblocking allreduce (libnbc) sums a buffer reduced in place, which every
/// gradient bucket is, over a binomial tree: the whole bucket travels to rank 0, rank 0 does
/// all the additions, and the sum travels back, log2(p) times over. Rabenseifner's
/// reduce-scatter + allgather moves each byte twice whatever p and shares the additions (ring
/// where a bucket is shorter than the power of two below p). On 2 ranks of one node the 56 MB
/// of bench-cpu's gradients took 46-71 ms the first way and 23-29 ms the second (alternating). A
/// choice the user made (the variable, or mpirun --mca) stands; other MPI libraries ignore the
/// variable.
void prefer_bandwidth_optimal_nonblocking_allreduce() {
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", /*overwrite=*/0);
}

/// A generated Slurm job (jobs/templates/run_and_requeue.sh) counts these marks, one per rank,
/// to tell a launch whose ranks died inside MPI_Init (nothing ran; it launches again) from one
/// that failed later. No collective: a rank marks what it alone knows. A mark that cannot be
/// written (a log directory its node does not see) can only make a failed job launch again
/// needlessly, at most 3 launches in all, so its failure is ignored.
void mark_started_for_job_script(int rank) {
  const char* dir = std::getenv("TESSERA_STARTED_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::ofstream mark(std::filesystem::path(dir) / ("rank-" + std::to_string(rank)));
}

}  // namespace

MpiSession::MpiSession(int& argc, char**& argv) {
  prefer_bandwidth_optimal_nonblocking_allreduce();
  int provided = 0;
  // MULTIPLE where the library offers it: an asynchronous checkpoint writes from a thread of
  // its own (on a communicator of its own) while the main thread trains. OpenMP threads never
  // call MPI.
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  mark_started_for_job_script(rank_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::exit_without_finalize(int status) const {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(status);
}

void MpiSession::abort_job(int status) const {
  MPI_Abort(MPI_COMM_WORLD, status);
  std::exit(status);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

}  // namespace tessera
