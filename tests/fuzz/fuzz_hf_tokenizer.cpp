// libFuzzer harness: a Hugging Face tokenizer.json and a text to encode with it, one input cut
// at its first NUL byte. Loading must work or be a UsageError; a tokenizer that loads must encode
// the text (or refuse it with a UsageError: a runaway regex) and decode the ids it gave.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "io/data/hf/hf_tokenizer.hpp"
#include "tests/fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = std::min(input.find('\0'), input.size());
  const std::string& path = tessera::fuzz::scratch_file("hf");
  tessera::fuzz::rewrite(path, input.substr(0, cut));
  const std::string text(input.substr(std::min(cut + 1, input.size())));
  try {
    const tessera::HfTokenizer tokenizer = tessera::HfTokenizer::load(path);
    tokenizer.decode(tokenizer.encode(text));
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
