#include "parallel/fail_fast.hpp"

#include <exception>
#include <iostream>

namespace tessera {

std::string rank_failure_message(int rank, int size, std::string_view what) {
  return "tessera: rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " +
         std::string(what);
}

int run_or_abort_job(const MpiSession& mpi, const std::function<int()>& body, int failure_status) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << rank_failure_message(mpi.rank(), mpi.size(), e.what()) << std::endl;
  } catch (...) {
    std::cerr << rank_failure_message(mpi.rank(), mpi.size(), "unknown exception") << std::endl;
  }
  if (mpi.size() > 1) mpi.abort_job(failure_status);
  return failure_status;
}

}  // namespace tessera
