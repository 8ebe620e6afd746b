#include "io/data/hf/decoder.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/data/hf/byte_level.hpp"
#include "io/data/hf/json_fields.hpp"
#include "io/data/hf/pattern.hpp"
#include "io/data/hf/utf8.hpp"

namespace tessera::hf {
namespace {

class ByteLevel final : public Decoder {
 public:
  // A token whose characters are all in the byte alphabet gives those bytes; any other (an added
  // token in plain text) gives its own UTF-8. The joined bytes are read leniently.
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      std::string mapped;
      bool all_mapped = true;
      for (size_t pos = 0, length = 0; pos < token.size() && all_mapped; pos += length) {
        const auto byte = alphabet_.byte_of(code_point_at(token, pos, length));
        if (byte) mapped.push_back(static_cast<char>(*byte));
        all_mapped = byte.has_value();
      }
      bytes += all_mapped ? mapped : token;
    }
    return {to_valid_utf8(bytes)};
  }

 private:
  ByteLevelAlphabet alphabet_;
};

class Replace final : public Decoder {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (auto& token : tokens) token = pattern_.replace_all(token, content_);
    return tokens;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xXX> tokens become the text of their bytes, or one U+FFFD per byte when those bytes
// are not valid UTF-8.
class ByteFallback final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t byte_tokens = 0;
    const auto flush = [&] {
      if (byte_tokens == 0) return;
      if (to_valid_utf8(bytes) == bytes) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < byte_tokens; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      byte_tokens = 0;
    };
    for (auto& token : tokens) {
      if (const int byte = byte_token_value(token); byte >= 0) {
        bytes.push_back(static_cast<char>(byte));
        ++byte_tokens;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    return out;
  }

 private:
  static int byte_token_value(const std::string& token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
      const char c = token[i];
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }
};

class Fuse final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string joined;
    for (const auto& token : tokens) joined += token;
    return {joined};
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class Strip final : public Decoder {
 public:
  Strip(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (auto& token : tokens) {
      size_t begin = 0, end = token.size();
      for (size_t i = 0;
           i < start_ && token.compare(begin, content_.size(), content_) == 0 && begin < end; ++i) {
        begin += content_.size();
      }
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
    return tokens;
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class Metaspace final : public Decoder {
 public:
  Metaspace(std::string replacement, bool strip_first)
      : marker_(Pattern::literal(std::move(replacement))), strip_first_(strip_first) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = marker_.replace_all(tokens[i], " ");
      if (i == 0 && strip_first_ && tokens[i].starts_with(' ')) tokens[i].erase(0, 1);
    }
    return tokens;
  }

 private:
  Pattern marker_;
  bool strip_first_;
};

class Sequence final : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (const auto& step : steps_) tokens = step->decode_chain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

size_t count_field(const nlohmann::json& spec, const char* key, const std::string& where) {
  const auto& value = field(spec, key, where);
  if (!value.is_number_unsigned()) throw UsageError(where + ": \"" + key + "\" must be a count");
  return value.get<size_t>();
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec, const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = string_field(spec, "type", where);
  const std::string here = where + " " + type;
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Replace") {
    return std::make_unique<Replace>(Pattern::from_json(field(spec, "pattern", here), here),
                                     string_field(spec, "content", here));
  }
  if (type == "Strip") {
    return std::make_unique<Strip>(string_field(spec, "content", here),
                                   count_field(spec, "start", here),
                                   count_field(spec, "stop", here));
  }
  if (type == "Metaspace") {
    const std::string scheme = optional_string_field(spec, "prepend_scheme", here);
    const bool strip_first =
        scheme.empty() ? bool_field(spec, "add_prefix_space", here, true) : scheme != "never";
    return std::make_unique<Metaspace>(string_field(spec, "replacement", here), strip_first);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& step : array_field(spec, "decoders", here)) {
      if (auto made = make_decoder(step, here)) steps.push_back(std::move(made));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  throw UsageError(where + ": decoder type '" + type +
                   "' is not supported; tessera reads ByteLevel, Replace, ByteFallback, Fuse, "
                   "Strip, Metaspace and Sequence");
}

}  // namespace tessera::hf
