#include "io/data/hf/post_processor.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/data/hf/json_fields.hpp"

namespace tessera::hf {
namespace {

// ["[CLS]", 101] -> 101
int32_t token_pair_id(const nlohmann::json& pair, const std::string& where) {
  const std::optional<int32_t> id =
      pair.is_array() && pair.size() == 2 ? token_id(pair[1]) : std::nullopt;
  if (!id)
    throw UsageError(where + ": a special token must be [\"text\", id] with id in [0, 2^24)");
  return *id;
}

}  // namespace

PostProcessor::PostProcessor(const nlohmann::json& spec, const std::string& where) {
  if (!spec.is_null()) read(spec, where);
}

void PostProcessor::read(const nlohmann::json& spec, const std::string& where) {
  const std::string type = string_field(spec, "type", where);
  const std::string here = where + " " + type;
  if (type == "ByteLevel") return;  // only moves offsets
  if (type == "TemplateProcessing") return read_template(spec, here);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    before_.push_back(token_pair_id(field(spec, "cls", here), here));
    after_.push_back(token_pair_id(field(spec, "sep", here), here));
    return;
  }
  if (type == "Sequence") {
    for (const auto& step : array_field(spec, "processors", here)) read(step, here);
    return;
  }
  throw UsageError(where + ": post_processor type '" + type +
                   "' is not supported; tessera reads TemplateProcessing, ByteLevel, "
                   "BertProcessing, RobertaProcessing and Sequence");
}

void PostProcessor::read_template(const nlohmann::json& spec, const std::string& where) {
  const auto& special_tokens = field(spec, "special_tokens", where);
  bool seen_sequence = false;
  for (const auto& piece : array_field(spec, "single", where)) {
    if (piece.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const std::string name = string_field(field(piece, "SpecialToken", where), "id", where);
    if (!special_tokens.contains(name)) {
      throw UsageError(where + ": the template names special token '" + name +
                       "' that special_tokens does not define");
    }
    auto& side = seen_sequence ? after_ : before_;
    for (const auto& value : array_field(special_tokens[name], "ids", where)) {
      const std::optional<int32_t> id = token_id(value);
      if (!id) throw UsageError(where + ": special token ids must be whole numbers in [0, 2^24)");
      side.push_back(*id);
    }
  }
}

std::vector<int32_t> PostProcessor::add_special_tokens(const std::vector<int32_t>& ids) const {
  if (before_.empty() && after_.empty()) return ids;
  std::vector<int32_t> out(before_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), after_.begin(), after_.end());
  return out;
}

}  // namespace tessera::hf
