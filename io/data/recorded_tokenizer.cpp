#include "io/data/recorded_tokenizer.hpp"

#include <vector>

#include "core/error.hpp"
#include "io/data/hf/hf_tokenizer.hpp"
#include "io/data/sentencepiece_tokenizer.hpp"
#include "io/data/tokenizer_spec.hpp"

namespace tessera {
namespace {

/// Where a run's tokenizer files may be: the file data.tokenizer names, then each source's copy.
std::vector<std::filesystem::path> candidate_files(const DataConfig& data, const char* name) {
  std::vector<std::filesystem::path> candidates;
  if (!tokenizer_spec_file(data.tokenizer).empty()) {
    candidates.emplace_back(std::string(tokenizer_spec_file(data.tokenizer)));
  }
  for (const DataSourceSpec& source : data_sources(data)) {
    candidates.push_back(std::filesystem::path(source.dir) / name);
  }
  if (data.sources.empty()) candidates.push_back(std::filesystem::path(data.source) / name);
  return candidates;
}

/// The id of the tokenizer in `file` of `kind`, or "" when it is not a readable one.
std::string file_tokenizer_id(const std::string& kind, const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) return {};
  try {
    return kind == "hf" ? hf_tokenizer_id(file) : SentencePieceTokenizer::load(file).id();
  } catch (const UsageError&) {
    return {};
  }
}

}  // namespace

std::string find_recorded_tokenizer(const std::string& id, const DataConfig& data,
                                    const std::filesystem::path& given) {
  const std::string kind = tokenizer_kind(id);
  if (id == "byte") return id;
  if (kind != "hf" && kind != "sentencepiece") {
    throw UsageError("the model was trained on data without a text tokenizer (" +
                     (id.empty() ? std::string("none recorded") : id) +
                     "), so it cannot read text; train on data from tessera prepare");
  }
  const char* name = kind == "hf" ? "tokenizer.json" : "tokenizer.model";
  if (!given.empty()) {
    if (file_tokenizer_id(kind, given) != id) {
      throw UsageError("--tokenizer " + given.string() +
                       " is not the tokenizer the model was trained with (" + id + "); pass the " +
                       name + " the data was prepared with");
    }
    return kind + ":" + given.string();
  }
  for (const auto& candidate : candidate_files(data, name)) {
    if (file_tokenizer_id(kind, candidate) == id) return kind + ":" + candidate.string();
  }
  throw UsageError("the model was trained with tokenizer " + id + ", and no " + name +
                   " with that id is where its configuration says; pass --tokenizer PATH/" + name +
                   " (the file the data was prepared with)");
}

}  // namespace tessera
