#include "core/error.hpp"

namespace tessera {

void throw_check_failure(const char* statement, const char* file, int line,
                         const std::string& detail) {
  throw InternalError(std::string("check failed: ") + statement + " at " + file + ":" +
                      std::to_string(line) + (detail.empty() ? "" : ": " + detail));
}

}  // namespace tessera
