// The file a harness writes each input to before handing its path to a reader: one per fuzzing
// process (mkstemp), rewritten for every input.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace tessera::fuzz {

/// This process's scratch file, /tmp/tessera_fuzz_NAME_XXXXXX, made on the first call.
inline const std::string& scratch_file(std::string_view name) {
  static const std::string path = [name] {
    std::string pattern = "/tmp/tessera_fuzz_" + std::string(name) + "_XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) std::abort();
    close(fd);
    return pattern;
  }();
  return path;
}

/// Replaces the file's contents with `bytes`.
inline void rewrite(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace tessera::fuzz
