// Errors in tessera come in two kinds, and each kind has one way out:
//
//  * UsageError: the user asked for something impossible (bad config key, shape that does not
//    divide, missing data file). The message names the problem and the fix; the command prints it
//    once and exits with status 2 before any work starts.
//  * TESSERA_CHECK: an internal invariant or a library call failed. It names the statement and
//    file:line; the command prints it and exits with status 1 (later: aborts the MPI job).
#pragma once

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

[[noreturn]] void throw_check_failure(const char* statement, const char* file, int line,
                                      const std::string& detail);

}  // namespace tessera

/// Checks an internal invariant; on failure throws InternalError naming the statement and place.
/// The condition is always evaluated (also under NDEBUG), so side effects inside it are safe.
#define TESSERA_CHECK(condition, detail)                                                        \
  do {                                                                                          \
    if (!(condition)) ::tessera::throw_check_failure(#condition, __FILE__, __LINE__, (detail)); \
  } while (0)
