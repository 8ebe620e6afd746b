#include "io/data/hf/pre_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/data/hf/byte_level.hpp"
#include "io/data/hf/json_fields.hpp"
#include "io/data/hf/pattern.hpp"

namespace tessera::hf {
namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  throw UsageError(where + ": unknown split behavior '" + name +
                   "'; use Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
}

struct Span {
  size_t begin, end;
  bool remove;
};

// Cuts `text` at the matches and applies the delimiter behaviour as Hugging Face's
// NormalizedString::split does: the text is first covered by alternating (match, gap) spans,
// then spans are merged or dropped, then empty ones vanish.
std::vector<Span> split_spans(std::string_view text, const std::vector<Match>& matches,
                              Behavior behavior, bool invert) {
  std::vector<std::pair<Match, bool>> covered;  // (span, is_match)
  size_t previous = 0;
  for (const auto& match : matches) {
    if (previous != match.first) covered.push_back({{previous, match.first}, invert});
    covered.push_back({match, !invert});
    previous = match.second;
  }
  if (previous != text.size() || covered.empty())
    covered.push_back({{previous, text.size()}, invert});

  std::vector<Span> spans;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      for (const auto& [span, is_match] : covered)
        spans.push_back({span.first, span.second, false});
      break;
    case Behavior::kRemoved:
      for (const auto& [span, is_match] : covered)
        spans.push_back({span.first, span.second, is_match});
      break;
    case Behavior::kContiguous:
      for (const auto& [span, is_match] : covered) {
        if (is_match == previous_match && !spans.empty()) {
          spans.back().end = span.second;
        } else {
          spans.push_back({span.first, span.second, false});
        }
        previous_match = is_match;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const auto& [span, is_match] : covered) {
        if (is_match && !previous_match && !spans.empty()) {
          spans.back().end = span.second;
        } else {
          spans.push_back({span.first, span.second, false});
        }
        previous_match = is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = covered.rbegin(); it != covered.rend(); ++it) {
        const auto& [span, is_match] = *it;
        if (is_match && !previous_match && !spans.empty()) {
          spans.back().begin = span.first;
        } else {
          spans.push_back({span.first, span.second, false});
        }
        previous_match = is_match;
      }
      std::reverse(spans.begin(), spans.end());
      break;
  }
  return spans;
}

void append_split(const Word& word, const std::vector<Match>& matches, Behavior behavior,
                  bool invert, std::vector<Word>& out) {
  for (const Span& span : split_spans(word.text, matches, behavior, invert)) {
    if (span.remove || span.end == span.begin) continue;
    out.push_back({word.text.substr(span.begin, span.end - span.begin),
                   word.at_text_start && span.begin == 0});
  }
}

class Split final : public PreTokenizer {
 public:
  Split(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  std::vector<Word> split(std::vector<Word> words) const override {
    std::vector<Word> out;
    for (const Word& word : words) {
      append_split(word, pattern_.find_all(word.text), behavior_, invert_, out);
    }
    return out;
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's word pattern, as Hugging Face's ByteLevel pre-tokenizer writes it.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space),
        words_(use_regex ? std::optional<Pattern>(Pattern::regex(kGpt2Pattern, where))
                         : std::nullopt) {}
  std::vector<Word> split(std::vector<Word> words) const override {
    std::vector<Word> out;
    for (Word& word : words) {
      if (add_prefix_space_ && !word.text.starts_with(' ')) word.text.insert(0, 1, ' ');
      const size_t first = out.size();
      if (words_) {
        append_split(word, words_->find_all(word.text), Behavior::kIsolated, false, out);
      } else {
        out.push_back(std::move(word));
      }
      for (size_t i = first; i < out.size(); ++i) out[i].text = alphabet_.encode(out[i].text);
    }
    return out;
  }

 private:
  bool add_prefix_space_;
  std::optional<Pattern> words_;
  ByteLevelAlphabet alphabet_;
};

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, std::string prepend_scheme, bool split)
      : replacement_(std::move(replacement)),
        prepend_scheme_(std::move(prepend_scheme)),
        split_(split),
        space_(Pattern::literal(" ")),
        marker_(Pattern::literal(replacement_)) {}
  std::vector<Word> split(std::vector<Word> words) const override {
    std::vector<Word> out;
    for (Word& word : words) {
      word.text = space_.replace_all(word.text, replacement_);
      const bool prepend =
          prepend_scheme_ == "always" || (prepend_scheme_ == "first" && word.at_text_start);
      if (prepend && !word.text.starts_with(replacement_)) word.text.insert(0, replacement_);
      if (split_) {
        append_split(word, marker_.find_all(word.text), Behavior::kMergedWithNext, false, out);
      } else {
        out.push_back(std::move(word));
      }
    }
    return out;
  }

 private:
  std::string replacement_, prepend_scheme_;
  bool split_;
  Pattern space_, marker_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  std::vector<Word> split(std::vector<Word> words) const override {
    for (const auto& step : steps_) words = step->split(std::move(words));
    return words;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

std::string metaspace_prepend_scheme(const nlohmann::json& spec, const std::string& where) {
  // Files from before tokenizers 0.14 say add_prefix_space instead of prepend_scheme.
  if (spec.contains("prepend_scheme") && !spec["prepend_scheme"].is_null()) {
    const std::string scheme = string_field(spec, "prepend_scheme", where);
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      throw UsageError(where + ": prepend_scheme '" + scheme +
                       "' is not one of always, first, never");
    }
    return scheme;
  }
  return bool_field(spec, "add_prefix_space", where, true) ? "always" : "never";
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec,
                                                 const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = string_field(spec, "type", where);
  const std::string here = where + " " + type;
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(bool_field(spec, "add_prefix_space", here, true),
                                       bool_field(spec, "use_regex", here, true), here);
  }
  if (type == "Split") {
    return std::make_unique<Split>(Pattern::from_json(field(spec, "pattern", here), here),
                                   parse_behavior(string_field(spec, "behavior", here), here),
                                   bool_field(spec, "invert", here, false));
  }
  if (type == "Metaspace") {
    return std::make_unique<Metaspace>(string_field(spec, "replacement", here),
                                       metaspace_prepend_scheme(spec, here),
                                       bool_field(spec, "split", here, true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& step : array_field(spec, "pretokenizers", here)) {
      if (auto made = make_pre_tokenizer(step, here)) steps.push_back(std::move(made));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  throw UsageError(where + ": pre_tokenizer type '" + type +
                   "' is not supported; tessera reads ByteLevel, Split, Metaspace and Sequence");
}

}  // namespace tessera::hf
