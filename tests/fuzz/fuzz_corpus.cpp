// libFuzzer harness: a corpus file as `tessera prepare` reads it. The first byte picks the name
// (JSON Lines or plain text), the rest is the file: plain, gzip or zstd, as its magic says.
// Reading every document and its text must work or be a UsageError (bad JSON, a corrupt
// stream), whatever the bytes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "io/data/corpus/documents.hpp"

namespace {

/// A directory per fuzzing process; the file inside is rewritten for every input.
const std::filesystem::path& work_directory() {
  static const std::filesystem::path path = [] {
    std::string pattern = "/tmp/tessera_fuzz_corpus_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    return std::filesystem::path(pattern);
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto file = work_directory() / ((data[0] & 1) != 0 ? "docs.jsonl" : "docs.txt");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  try {
    tessera::DocumentReader documents(file, "text");
    std::string raw;
    while (documents.next(raw)) documents.text(raw);
  } catch (const tessera::UsageError&) {
  }
  std::filesystem::remove(file);
  return 0;
}
