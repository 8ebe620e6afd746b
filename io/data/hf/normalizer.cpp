#include "io/data/hf/normalizer.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.hpp"
#include "io/data/hf/json_fields.hpp"
#include "io/data/hf/pattern.hpp"
#include "io/data/hf/utf8.hpp"

namespace tessera::hf {
namespace {

class UnicodeForm final : public Normalizer {
 public:
  explicit UnicodeForm(int options) : options_(options) {}
  std::string normalize(std::string_view text) const override {
    utf8proc_uint8_t* mapped = nullptr;
    const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                     static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                     static_cast<utf8proc_option_t>(options_ | UTF8PROC_STABLE));
    if (length < 0) return std::string(text);  // only on invalid UTF-8, which never gets here
    std::string out(reinterpret_cast<char*>(mapped), static_cast<size_t>(length));
    std::free(mapped);
    return out;
  }

 private:
  int options_;
};

class Lowercase final : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0, length = 0; pos < text.size(); pos += length) {
      const char32_t c = code_point_at(text, pos, length);
      // Rust's char::to_lowercase, which Hugging Face uses, adds Unicode's one unconditional
      // multi-character mapping (SpecialCasing.txt) to the simple ones utf8proc gives.
      if (c == U'\u0130') {
        out += "i\u0307";
        continue;
      }
      append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
    return out;
  }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string_view text) const override {
    return text.empty() ? std::string() : prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override {
    return pattern_.replace_all(text, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    size_t begin = 0, end = text.size(), length = 0;
    while (left_ && begin < end && is_white_space(code_point_at(text, begin, length))) {
      begin += length;
    }
    while (right_ && end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
      if (!is_white_space(code_point_at(text, start, length))) break;
      end = start;
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_, right_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string_view text) const override {
    std::string out(text);
    for (const auto& step : steps_) out = step->normalize(out);
    return out;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec, const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = string_field(spec, "type", where);
  const std::string here = where + " " + type;
  if (type == "NFC") return std::make_unique<UnicodeForm>(UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeForm>(UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD") return std::make_unique<UnicodeForm>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Prepend") return std::make_unique<Prepend>(string_field(spec, "prepend", here));
  if (type == "Replace") {
    return std::make_unique<Replace>(Pattern::from_json(field(spec, "pattern", here), here),
                                     string_field(spec, "content", here));
  }
  if (type == "Strip") {
    return std::make_unique<Strip>(bool_field(spec, "strip_left", here, false),
                                   bool_field(spec, "strip_right", here, false));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& step : array_field(spec, "normalizers", here)) {
      if (auto made = make_normalizer(step, here)) steps.push_back(std::move(made));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  throw UsageError(where + ": normalizer type '" + type +
                   "' is not supported; tessera reads NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
                   "Replace, Strip and Sequence");
}

}  // namespace tessera::hf
