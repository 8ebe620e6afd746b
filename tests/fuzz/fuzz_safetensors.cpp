// libFuzzer harness: a safetensors file. Opening it and reading every tensor as floats must work
// or be a UsageError; nothing is allocated from a size the file claims beyond what it holds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "io/hf_model/safetensors.hpp"
#include "tests/fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& path = tessera::fuzz::scratch_file("safetensors");
  tessera::fuzz::rewrite(path, {reinterpret_cast<const char*>(data), size});
  try {
    const tessera::SafetensorsReader reader(path);
    for (const auto& tensor : reader.tensors()) {
      try {
        reader.read_floats(tensor);
      } catch (const tessera::UsageError&) {  // a dtype tessera does not read
      }
    }
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
