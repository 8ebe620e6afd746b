#include "io/data/corpus/documents.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace tessera {
namespace {

constexpr size_t kReadBlock = 1 << 20;

void add_path(const std::filesystem::path& path, const std::string& named_by,
              std::vector<std::filesystem::path>& files) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    std::vector<std::filesystem::path> found;
    for (auto it = std::filesystem::recursive_directory_iterator(path, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
      const std::string name = it->path().filename().string();
      if (name.starts_with(".")) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) found.push_back(it->path());
    }
    if (error) {
      throw UsageError("input directory " + path.string() + " cannot be read (" + error.message() +
                       "); check its permissions");
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  } else if (std::filesystem::is_regular_file(path, error)) {
    files.push_back(path);
  } else {
    throw UsageError("input " + path.string() + named_by +
                     " does not exist or is neither a file nor a directory; check the path");
  }
}

}  // namespace

std::vector<std::filesystem::path> expand_inputs(const std::vector<std::filesystem::path>& inputs,
                                                 const std::filesystem::path& list_file) {
  std::vector<std::filesystem::path> files;
  for (const auto& input : inputs) add_path(input, "", files);
  if (!list_file.empty()) {
    std::ifstream list(list_file);
    if (!list) {
      throw UsageError("input list " + list_file.string() +
                       " cannot be read; check the path given to --input-list");
    }
    std::string line;
    for (int number = 1; std::getline(list, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.starts_with("#")) continue;
      std::filesystem::path path(line);
      if (path.is_relative()) path = list_file.parent_path() / path;
      add_path(path, " (line " + std::to_string(number) + " of " + list_file.string() + ")", files);
    }
  }
  if (files.empty()) {
    throw UsageError(
        "the inputs name no files; give text or JSON Lines files, directories "
        "holding them, or --input-list");
  }
  return files;
}

bool is_json_lines(const std::filesystem::path& path) {
  std::filesystem::path name = path.filename();
  if (name.extension() == ".gz" || name.extension() == ".zst") name = name.stem();
  const auto extension = name.extension();
  return extension == ".jsonl" || extension == ".ndjson" || extension == ".json";
}

DocumentReader::DocumentReader(const std::filesystem::path& path, std::string text_key)
    : stream_(path), text_key_(std::move(text_key)), json_lines_(is_json_lines(path)) {}

bool DocumentReader::fill() {
  if (ended_) return false;
  buffer_.erase(0, buffer_at_);
  buffer_at_ = 0;
  const size_t old_size = buffer_.size();
  buffer_.resize(old_size + kReadBlock);
  const size_t got = stream_.read(buffer_.data() + old_size, kReadBlock);
  buffer_.resize(old_size + got);
  ended_ = got == 0;
  return got > 0;
}

bool DocumentReader::next(std::string& raw) {
  if (!json_lines_) {
    if (line_ > 0) return false;
    while (fill()) {
    }
    raw = std::move(buffer_);
    buffer_.clear();
    line_ = 1;
    return true;
  }
  for (;;) {
    const size_t end = buffer_.find('\n', buffer_at_);
    if (end == std::string::npos && fill()) continue;
    if (end == std::string::npos && buffer_at_ == buffer_.size()) return false;
    const size_t stop = end == std::string::npos ? buffer_.size() : end;
    raw.assign(buffer_, buffer_at_, stop - buffer_at_);
    buffer_at_ = end == std::string::npos ? buffer_.size() : end + 1;
    ++line_;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    if (raw.find_first_not_of(" \t") != std::string::npos) return true;  // blank lines: none
  }
}

std::string DocumentReader::text(const std::string& raw) const {
  if (!json_lines_) return raw;
  const std::string where = stream_.path().string() + " line " + std::to_string(line_);
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(raw);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(where + " is not valid JSON (" + e.what() +
                     "); fix or drop the line: JSON Lines holds one JSON object per line");
  }
  if (!record.is_object()) {
    throw UsageError(where +
                     " is JSON but not an object; each line must be an object with the "
                     "text under \"" +
                     text_key_ + "\"");
  }
  const auto field = record.find(text_key_);
  if (field == record.end() || !field->is_string()) {
    throw UsageError(where + " has no string field \"" + text_key_ +
                     "\"; pass --text-key with the field that holds the text");
  }
  return field->get<std::string>();
}

}  // namespace tessera
