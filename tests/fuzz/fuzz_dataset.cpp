// libFuzzer harness: a prepared dataset's dataset.json, beside one valid shard. Opening it and
// reading windows must either work or be a UsageError.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/config/config.hpp"
#include "io/data/data_loader.hpp"
#include "io/data/split.hpp"

namespace {

/// A directory per fuzzing process holding the shards of tests/fuzz/data (what `tessera
/// prepare` wrote for 600 bytes of text); dataset.json is the input.
const std::filesystem::path& dataset_dir() {
  static const std::filesystem::path dir = [] {
    std::string pattern = "/tmp/tessera_fuzz_dataset_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    for (const char* shard : {"train_000000.bin", "val_000000.bin"}) {
      std::filesystem::copy_file(std::filesystem::path(TESSERA_FUZZ_DATA_DIR) / shard,
                                 std::filesystem::path(pattern) / shard);
    }
    return std::filesystem::path(pattern);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  {
    std::ofstream out(dataset_dir() / "dataset.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  tessera::DataConfig source;
  source.source = dataset_dir().string();
  tessera::ModelConfig model;
  model.vocab_size = 256;
  model.seq_len = 16;
  try {
    const auto loader = tessera::DataLoader::open(source, model);
    std::vector<int32_t> inputs(2 * 16), targets(2 * 16);
    loader.read(tessera::Split::train, 0, 2, inputs.data(), targets.data());
    loader.read(tessera::Split::validation, 1, 2, inputs.data(), targets.data());
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
