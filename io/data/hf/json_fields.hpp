// Typed access to tokenizer.json fields: a missing or mistyped field is a UsageError that names
// the file and the field, never a JSON exception.
#pragma once

#include <nlohmann/json.hpp>
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
/// A string field that may be absent or null: empty then.
std::string optional_string_field(const nlohmann::json& object, const char* key,
                                  const std::string& where);

}  // namespace tessera::hf
