// tokenizer.json "normalizer": rewrites text before it is split into words. Supported: NFC,
// NFD, NFKC, NFKD (utf8proc), Lowercase, Prepend, Replace, Strip and Sequence of these.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace tessera::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

/// The normalizer described by `spec`, or null for JSON null. UsageError naming `where` and the
/// supported types for any other type.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec, const std::string& where);

}  // namespace tessera::hf
