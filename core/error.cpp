#include "core/error.hpp"

#include <cstdio>

namespace tessera {

ResourceError out_of_memory(std::size_t bytes, const std::string& where, std::size_t available) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  char amounts[160];
  std::snprintf(amounts, sizeof amounts, "%.2f GiB of %s", static_cast<double>(bytes) / kGiB,
                where.c_str());
  std::string message = std::string("cannot allocate ") + amounts;
  if (available > 0) {
    std::snprintf(amounts, sizeof amounts, " (%.2f GiB free there)",
                  static_cast<double>(available) / kGiB);
    message += amounts;
  }
  return ResourceError(message + ": " + kMemoryAdvice);
}

void throw_check_failure(const char* statement, const char* file, int line,
                         const std::string& detail) {
  throw InternalError(std::string("check failed: ") + statement + " at " + file + ":" +
                      std::to_string(line) + (detail.empty() ? "" : ": " + detail));
}

}  // namespace tessera
