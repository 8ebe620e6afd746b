// libFuzzer harness: a token shard file. Opening, verifying and reading it must either work or
// be a UsageError; nothing is sized by the file beyond what the file holds.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/data/shard.hpp"

namespace {

/// One file per fuzzing process, rewritten for every input.
const std::string& shard_path() {
  static const std::string path = [] {
    std::string pattern = "/tmp/tessera_fuzz_shard_XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) std::abort();
    close(fd);
    return pattern;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  {
    std::ofstream out(shard_path(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const tessera::ShardReader shard(shard_path());
    shard.verify_payload();
    const uint64_t count = std::min<uint64_t>(shard.size(), 4096);
    std::vector<int32_t> tokens(count);
    shard.read(0, count, tokens.data());
    if (shard.size() > count) shard.read(shard.size() - 1, 1, tokens.data());
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
