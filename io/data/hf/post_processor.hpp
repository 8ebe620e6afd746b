// tokenizer.json "post_processor" for a single sequence: the special tokens an encoding gets
// around its ids when special tokens are asked for (Llama's <s> in front, BERT's [CLS] ... [SEP]).
// Supported: TemplateProcessing, ByteLevel (no change to ids), BertProcessing,
// RobertaProcessing and Sequence of these.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace tessera::hf {

class PostProcessor {
 public:
  /// An identity post-processor for JSON null; UsageError naming `where` for other types.
  PostProcessor(const nlohmann::json& spec, const std::string& where);

  std::vector<int32_t> add_special_tokens(const std::vector<int32_t>& ids) const;

 private:
  void read(const nlohmann::json& spec, const std::string& where);
  void read_template(const nlohmann::json& spec, const std::string& where);

  // The single-sequence template: ids before and after the sequence.
  std::vector<int32_t> before_, after_;
};

}  // namespace tessera::hf
