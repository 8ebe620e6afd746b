// libFuzzer harness: a Hugging Face tokenizer.json and a text to encode with it, one input cut
// at its first NUL byte. Loading must work or be a UsageError; a tokenizer that loads must encode
// the text (or refuse it with a UsageError: a runaway regex) and decode the ids it gave.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "io/data/hf/hf_tokenizer.hpp"

namespace {

/// One file per fuzzing process, rewritten for every input.
const std::string& tokenizer_path() {
  static const std::string path = [] {
    std::string pattern = "/tmp/tessera_fuzz_hf_XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) std::abort();
    close(fd);
    return pattern;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = std::min(input.find('\0'), input.size());
  {
    std::ofstream out(tokenizer_path(), std::ios::binary | std::ios::trunc);
    out.write(input.data(), static_cast<std::streamsize>(cut));
  }
  const std::string text(input.substr(std::min(cut + 1, input.size())));
  try {
    const tessera::HfTokenizer tokenizer = tessera::HfTokenizer::load(tokenizer_path());
    tokenizer.decode(tokenizer.encode(text));
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
