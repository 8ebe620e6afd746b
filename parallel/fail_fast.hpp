// One rank failing alone must end the whole job, never leave the others waiting in a collective.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "parallel/mpi_session.hpp"

namespace tessera {

/// The line a failing rank prints: "tessera: rank 1 of 4: <what>".
std::string rank_failure_message(int rank, int size, std::string_view what);

/// Runs `body` and returns its status. If it throws, prints rank_failure_message to stderr and
/// ends every rank of the job (MPI_Abort with `failure_status`); a job of one rank just
/// returns `failure_status`. For failures a rank may meet alone (a file it cannot read, a
/// broken invariant); configuration errors that every rank detects are better reported once,
/// by rank 0, with a clean exit (see src/cli/main.cpp).
int run_or_abort_job(const MpiSession& mpi, const std::function<int()>& body,
                     int failure_status = 1);

}  // namespace tessera
