#include "io/data/hf/hf_tokenizer.hpp"

#include <fmt/format.h>

#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/data/hf/added_tokens.hpp"
#include "io/data/hf/bpe_model.hpp"
#include "io/data/hf/decoder.hpp"
#include "io/data/hf/json_fields.hpp"
#include "io/data/hf/normalizer.hpp"
#include "io/data/hf/post_processor.hpp"
#include "io/data/hf/pre_tokenizer.hpp"
#include "io/data/hf/utf8.hpp"

namespace tessera {

namespace {

// Words repeat (Zipf): caching their ids is most of the speed. Long words are rare and not kept.
constexpr size_t kCacheEntries = 1 << 18;
constexpr size_t kCachedWordBytes = 64;

std::string read_file(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw UsageError("tokenizer file " + path.string() +
                     " does not exist or is not a file; give the path of a tokenizer.json");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw UsageError("cannot read tokenizer file " + path.string() + "; check permissions");
  return std::move(text).str();
}

nlohmann::json parse(const std::string& text, const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError("tokenizer file " + path.string() + " is not valid JSON (" + e.what() +
                     "); give a Hugging Face tokenizer.json");
  }
}

// A top-level part that may be absent (then null, as Hugging Face writes it). A copy: these
// parts are small; the model, which is not, is read in place.
nlohmann::json optional(const nlohmann::json& root, const char* key) {
  return root.value(key, nlohmann::json());
}

std::string id_of_content(std::string_view file_content) {
  return "hf:" +
         to_hex16(fnv1a64(std::as_bytes(std::span(file_content.data(), file_content.size()))));
}

}  // namespace

struct HfTokenizer::Pipeline {
  Pipeline(const nlohmann::json& root, const std::string& where, std::filesystem::path path,
           std::string id)
      : file(std::move(path)),
        tokenizer_id(std::move(id)),
        added(optional(root, "added_tokens"), where),
        normalizer(hf::make_normalizer(optional(root, "normalizer"), where + " normalizer")),
        pre_tokenizer(
            hf::make_pre_tokenizer(optional(root, "pre_tokenizer"), where + " pre_tokenizer")),
        model(checked_model(root, where), where + " model"),
        post_processor(optional(root, "post_processor"), where + " post_processor"),
        decoder(hf::make_decoder(optional(root, "decoder"), where + " decoder")) {
    check_added_token_ids(where);
  }

  // Hugging Face renumbers an added token whose id disagrees with the vocabulary (with only a
  // warning), so such a file means different ids to different readers: refuse it.
  void check_added_token_ids(const std::string& where) const {
    for (const hf::AddedToken& token : added.tokens()) {
      const std::optional<int32_t> vocab_id = model.id_of(token.content);
      const std::string* holder = model.token_of(token.id);
      if ((vocab_id && *vocab_id != token.id) || (!vocab_id && holder != nullptr)) {
        throw UsageError(fmt::format(
            "{}: added token '{}' has id {}, but the vocabulary gives {}; Hugging Face would "
            "renumber it, so its ids are ambiguous: correct the id in added_tokens",
            where, token.content, token.id,
            vocab_id ? fmt::format("it id {}", *vocab_id)
                     : fmt::format("id {} to '{}'", token.id, *holder)));
      }
    }
  }

  static const nlohmann::json& checked_model(const nlohmann::json& root, const std::string& where) {
    const auto& model = hf::field(root, "model", where);
    const std::string type = model.value("type", std::string("BPE"));
    if (type != "BPE") {
      throw UsageError(where + ": model type '" + type +
                       "' is not supported; tessera reads BPE tokenizers (GPT-2, GPT-NeoX, "
                       "Llama-2, Llama-3 and their kind)");
    }
    return model;
  }

  void encode_words(std::string text, bool at_text_start, std::vector<int32_t>& ids) const {
    std::vector<hf::Word> words{{std::move(text), at_text_start}};
    if (pre_tokenizer) words = pre_tokenizer->split(std::move(words));
    for (const hf::Word& word : words) {
      if (word.text.empty()) continue;
      if (word.text.size() > kCachedWordBytes) {
        model.encode_word(word.text, ids);
        continue;
      }
      const auto cached = cache.find(word.text);
      if (cached != cache.end()) {
        ids.insert(ids.end(), cached->second.begin(), cached->second.end());
        continue;
      }
      const size_t first = ids.size();
      model.encode_word(word.text, ids);
      if (cache.size() < kCacheEntries) {
        cache.emplace(word.text,
                      std::vector<int32_t>(ids.begin() + static_cast<long>(first), ids.end()));
      }
    }
  }

  std::vector<int32_t> encode(std::string_view raw, bool add_special_tokens) const {
    std::vector<hf::Segment> raw_segments, segments;
    added.split({hf::to_valid_utf8(raw), -1, true}, false, raw_segments);
    for (hf::Segment& segment : raw_segments) {
      if (segment.token >= 0) {
        segments.push_back(std::move(segment));
        continue;
      }
      if (normalizer) segment.text = normalizer->normalize(segment.text);
      added.split(segment, true, segments);
    }
    std::vector<int32_t> ids;
    const std::lock_guard lock(cache_mutex);
    for (hf::Segment& segment : segments) {
      if (segment.token >= 0) {
        ids.push_back(segment.token);
      } else {
        encode_words(std::move(segment.text), segment.at_text_start, ids);
      }
    }
    return add_special_tokens ? post_processor.add_special_tokens(ids) : ids;
  }

  std::optional<std::string> token_text(int32_t id, bool skip_special_tokens) const {
    if (const hf::AddedToken* token = added.find(id)) {
      if (skip_special_tokens && token->special) return std::nullopt;
      return token->content;
    }
    if (const std::string* token = model.token_of(id)) return *token;
    return std::nullopt;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
    std::vector<std::string> tokens;
    for (int32_t id : ids) {
      if (auto token = token_text(id, skip_special_tokens)) tokens.push_back(*token);
    }
    std::string text;
    if (!decoder) {  // Hugging Face joins the tokens with spaces then
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (i > 0) text += ' ';
        text += tokens[i];
      }
      return text;
    }
    for (const auto& piece : decoder->decode_chain(std::move(tokens))) text += piece;
    return text;
  }

  std::filesystem::path file;
  std::string tokenizer_id;
  hf::AddedTokens added;
  std::unique_ptr<hf::Normalizer> normalizer;
  std::unique_ptr<hf::PreTokenizer> pre_tokenizer;
  hf::BpeModel model;
  hf::PostProcessor post_processor;
  std::unique_ptr<hf::Decoder> decoder;
  // The word cache and the regex match buffers are per tokenizer; encode holds this lock.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;
};

HfTokenizer::HfTokenizer(std::unique_ptr<Pipeline> pipeline) : pipeline_(std::move(pipeline)) {}
HfTokenizer::HfTokenizer(HfTokenizer&&) noexcept = default;
HfTokenizer& HfTokenizer::operator=(HfTokenizer&&) noexcept = default;
HfTokenizer::~HfTokenizer() = default;

std::string hf_tokenizer_id(const std::filesystem::path& tokenizer_json) {
  return id_of_content(read_file(tokenizer_json));
}

HfTokenizer HfTokenizer::load(const std::filesystem::path& tokenizer_json) {
  const std::string text = read_file(tokenizer_json);
  const nlohmann::json root = parse(text, tokenizer_json);
  const std::string where = "tokenizer file " + tokenizer_json.string();
  if (!root.is_object()) throw UsageError(where + " is not a JSON object; give a tokenizer.json");
  return HfTokenizer(std::make_unique<Pipeline>(root, where, tokenizer_json, id_of_content(text)));
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text) const {
  return pipeline_->encode(text, true);
}

std::vector<int32_t> HfTokenizer::encode_without_special_tokens(std::string_view text) const {
  return pipeline_->encode(text, false);
}

std::string HfTokenizer::decode(std::span<const int32_t> ids) const {
  return pipeline_->decode(ids, false);
}

std::string HfTokenizer::decode_skipping_special_tokens(std::span<const int32_t> ids) const {
  return pipeline_->decode(ids, true);
}

int HfTokenizer::vocab_size() const {
  int32_t bound = pipeline_->model.id_bound();
  for (const auto& token : pipeline_->added.tokens()) bound = std::max(bound, token.id + 1);
  return bound;
}

std::string HfTokenizer::id() const { return pipeline_->tokenizer_id; }

std::map<std::string, int32_t> HfTokenizer::special_tokens() const {
  std::map<std::string, int32_t> special;
  for (const auto& token : pipeline_->added.tokens()) {
    if (token.special) special.emplace(token.content, token.id);
  }
  return special;
}

const std::filesystem::path& HfTokenizer::file() const { return pipeline_->file; }

}  // namespace tessera
