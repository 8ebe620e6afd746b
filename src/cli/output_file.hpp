// A file a command writes at its end (--json, --markdown) is checked before any work, so that a
// long evaluation never ends in "cannot write".
#pragma once

#include <filesystem>
#include <string>

#include "core/error.hpp"

namespace tessera {

/// UsageError unless `file` (given with `option`; empty: none) names a file in an existing
/// directory.
inline void check_output_file(const std::filesystem::path& file, const char* option) {
  if (file.empty()) return;
  std::error_code error;
  const std::filesystem::path parent =
      file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  if (std::filesystem::is_directory(file, error) || !std::filesystem::is_directory(parent, error)) {
    throw UsageError(std::string(option) + " " + file.string() +
                     " is not a file in an existing directory; name a file to write");
  }
}

}  // namespace tessera
