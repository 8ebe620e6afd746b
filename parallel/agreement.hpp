// Start-up checks that only some ranks may fail (a run directory rank 0 cannot write, a file one
// node cannot see) must still stop every rank, with the message printed once.
#pragma once

#include <functional>

#include "core/error.hpp"
#include "parallel/communicator.hpp"

namespace tessera {

/// A usage error that this rank met and must print itself (its peers exit without a word).
class RankUsageError : public UsageError {
 public:
  using UsageError::UsageError;
};

/// Thrown on every rank that did not fail when another rank did: exit status 2, no message.
class PeerUsageError : public std::runtime_error {
 public:
  PeerUsageError() : std::runtime_error("another rank reported a usage error") {}
};

/// Runs `step` on every rank of `world`, then agrees (one collective): when any rank threw a
/// UsageError, the lowest such rank rethrows it as RankUsageError and all others throw
/// PeerUsageError, so the job stops before any work and the message appears once.
void run_agreed(Communicator& world, const std::function<void()>& step);

}  // namespace tessera
