// tokenizer.json "decoder": token strings back to text. Supported: ByteLevel, Replace,
// ByteFallback, Fuse, Strip, Metaspace and Sequence of these; without a decoder, tokens are
// joined with spaces (Hugging Face's rule).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace tessera::hf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  /// Rewrites the list of token strings; the text is their concatenation afterwards.
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
};

/// The decoder of `spec`, or null for JSON null; UsageError naming `where` otherwise.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec, const std::string& where);

}  // namespace tessera::hf
