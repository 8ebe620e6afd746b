// Typed access to tokenizer.json fields: a missing or mistyped field is a UsageError that names
// the file and the field, never a JSON exception.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace tessera::hf {

const nlohmann::json& field(const nlohmann::json& object, const char* key,
                            const std::string& where);
std::string string_field(const nlohmann::json& object, const char* key, const std::string& where);
/// `fallback` when the field is absent or null.
bool bool_field(const nlohmann::json& object, const char* key, const std::string& where,
                bool fallback);
const nlohmann::json& array_field(const nlohmann::json& object, const char* key,
                                  const std::string& where);
/// `value` as a token id in [0, 2^24); none otherwise. The vocabulary's tables are sized by
/// its largest id, which a file must not make unbounded (Llama-3's 128 Ki ids fit with room).
std::optional<int32_t> token_id(const nlohmann::json& value);
/// A string field that may be absent or null: empty then.
std::string optional_string_field(const nlohmann::json& object, const char* key,
                                  const std::string& where);

}  // namespace tessera::hf
