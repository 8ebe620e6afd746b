// Helpers shared by the io/data tests: generated text and the tiny-shakespeare corpus, beside
// the file helpers of tests/support.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/support/file_test_util.hpp"

namespace tessera::testing {

/// A few kilobytes of English-like text with a deterministic, varied word sequence.
inline std::string generated_text(int lines) {
  static constexpr const char* kWords[] = {
      "the",   "quick",  "brown", "fox",   "jumps",  "over",   "lazy",   "dog",
      "and",   "then",   "runs",  "into",  "a",      "forest", "where",  "seven",
      "trees", "stand",  "tall",  "while", "rivers", "flow",   "gently", "past",
      "old",   "stones", "under", "grey",  "skies",  "of",     "early",  "spring"};
  constexpr int kCount = sizeof(kWords) / sizeof(kWords[0]);
  std::string text;
  uint32_t state = 12345;
  for (int line = 0; line < lines; ++line) {
    const int words = 5 + line % 7;
    for (int w = 0; w < words; ++w) {
      state = state * 1664525u + 1013904223u;
      text += kWords[(state >> 16) % kCount];
      text += w + 1 < words ? " " : (line % 3 == 0 ? ".\n" : ",\n");
    }
  }
  return text;
}

/// The tiny-shakespeare corpus, or "" when it is not available.
inline std::filesystem::path tinyshakespeare_path() {
  const char* from_environment = std::getenv("TESSERA_TINYSHAKESPEARE");
  std::filesystem::path path =
      from_environment ? from_environment : TESSERA_TINYSHAKESPEARE_DEFAULT;
  return std::filesystem::is_regular_file(path) ? path : std::filesystem::path();
}

}  // namespace tessera::testing
