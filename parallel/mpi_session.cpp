#include "parallel/mpi_session.hpp"

#include <mpi.h>

#include <cstdlib>

namespace tessera {

MpiSession::MpiSession(int& argc, char**& argv) {
  int provided = 0;
  // MULTIPLE where the library offers it: an asynchronous checkpoint writes from a thread of
  // its own (on a communicator of its own) while the main thread trains. OpenMP threads never
  // call MPI.
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort_job(int status) const {
  MPI_Abort(MPI_COMM_WORLD, status);
  std::exit(status);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

}  // namespace tessera
