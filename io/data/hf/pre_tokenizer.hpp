// tokenizer.json "pre_tokenizer": splits normalized text into the words that the model encodes
// one by one. Supported: ByteLevel (GPT-2's regex and byte alphabet), Split (string or regex,
// every delimiter behaviour, invert), Metaspace and Sequence of these.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace tessera::hf {

struct Word {
  std::string text;
  bool at_text_start = false;  ///< begins at offset 0 of the input (Metaspace's "first" scheme)
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Splits each word of `words` further, in order.
  virtual std::vector<Word> split(std::vector<Word> words) const = 0;
};

/// The pre-tokenizer of `spec`, or null for JSON null; UsageError naming `where` otherwise.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec,
                                                 const std::string& where);

}  // namespace tessera::hf
