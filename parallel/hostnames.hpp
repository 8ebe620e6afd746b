// Which node each rank runs on: the run manifest records it, and a hang report names the nodes
// of the ranks it found stuck.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

namespace tessera {

/// Collective over `comm`: every rank's host name, in rank order (on every rank).
std::vector<std::string> gather_hostnames(MPI_Comm comm);

}  // namespace tessera
