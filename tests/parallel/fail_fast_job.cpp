// A job in which one rank fails alone: rank 1 throws while every other rank waits in a
// barrier. run_or_abort_job must print the failing rank and end the whole job; without it the
// other ranks would wait forever (ctest's timeout then fails the test).
#include <mpi.h>

#include <stdexcept>

#include "parallel/fail_fast.hpp"
#include "parallel/mpi_session.hpp"

int main(int argc, char** argv) {
  tessera::MpiSession mpi(argc, argv);
  return tessera::run_or_abort_job(mpi, [&] {
    if (mpi.rank() == 1) throw std::runtime_error("cannot read shard 7 (simulated failure)");
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
  });
}
