// Helpers shared by the io/data tests: a self-deleting temporary directory and file writers.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace tessera::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tessera-data-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

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

/// Runs `statement`, expects a UsageError and returns its message ("" and a failure otherwise).
template <typename Statement>
std::string usage_error_message(Statement statement) {
  try {
    statement();
  } catch (const UsageError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UsageError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected UsageError, nothing was thrown";
  return "";
}

}  // namespace tessera::testing
