// Commands that work on files in one process (export, import) refuse to run on several ranks,
// where each would write the same files.
#pragma once

#include <mpi.h>

#include <string>

#include "core/error.hpp"

namespace tessera {

inline void require_single_process(const std::string& command) {
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (ranks > 1) {
    throw UsageError("tessera " + command + " runs in one process, and this job has " +
                     std::to_string(ranks) + " ranks; start it without mpirun or srun");
  }
}

}  // namespace tessera
