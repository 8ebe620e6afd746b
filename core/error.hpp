// Errors in tessera come in three kinds, and each kind has one way out:
//
//  * UsageError: the user asked for something impossible (bad config key, shape that does not
//    divide, missing data file). The message names the problem and the fix; the command prints it
//    once and exits with status 2 before any work starts.
//  * TESSERA_CHECK: an internal invariant or a library call failed. It names the statement and
//    file:line; the command prints it and exits with status 1 (later: aborts the MPI job).
//  * ResourceError: the machine cannot give what the run needs (memory). The message says what
//    was asked for, how much, what there is and what to change; the command prints it with the
//    rank and ends the whole job (status 1).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace tessera {

/// A problem with what the user asked for. `what()` is one line: the problem and how to fix it.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

/// A broken internal invariant or failed library call; never the user's fault.
class InternalError : public std::runtime_error {
 public:
  explicit InternalError(const std::string& message) : std::runtime_error(message) {}
};

/// The machine lacks what the run needs; `what()` is one line naming the amount and the fix.
class ResourceError : public std::runtime_error {
 public:
  explicit ResourceError(const std::string& message) : std::runtime_error(message) {}
};

/// What to change when a run does not fit in memory.
inline constexpr const char* kMemoryAdvice =
    "the model's weights, gradients, optimizer state and activations do not fit; use a smaller "
    "model or train.micro_batch, spread the model over more ranks (parallel.tp, parallel.pp), "
    "shard the optimizer state (parallel.zero = 1), or recompute activations (train.recompute)";

/// The ResourceError for `bytes` of memory that `where` ("host memory", "memory of GPU 0")
/// could not give, `available` bytes being free there (0: unknown).
ResourceError out_of_memory(std::size_t bytes, const std::string& where, std::size_t available);

[[noreturn]] void throw_check_failure(const char* statement, const char* file, int line,
                                      const std::string& detail);

}  // namespace tessera

/// Checks an internal invariant; on failure throws InternalError naming the statement and place.
/// The condition is always evaluated (also under NDEBUG), so side effects inside it are safe.
#define TESSERA_CHECK(condition, detail)                                                        \
  do {                                                                                          \
    if (!(condition)) ::tessera::throw_check_failure(#condition, __FILE__, __LINE__, (detail)); \
  } while (0)
