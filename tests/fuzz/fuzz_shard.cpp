// libFuzzer harness: a token shard file. Opening, verifying and reading it must either work or
// be a UsageError; nothing is sized by the file beyond what the file holds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/data/shard.hpp"
#include "tests/fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& path = tessera::fuzz::scratch_file("shard");
  tessera::fuzz::rewrite(path, {reinterpret_cast<const char*>(data), size});
  try {
    const tessera::ShardReader shard(path);
    shard.verify_payload();
    const uint64_t count = std::min<uint64_t>(shard.size(), 4096);
    std::vector<int32_t> tokens(count);
    shard.read(0, count, tokens.data());
    if (shard.size() > count) shard.read(shard.size() - 1, 1, tokens.data());
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
