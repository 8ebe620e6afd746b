#include "io/data/hf/json_fields.hpp"

#include "core/error.hpp"
#include "core/json_numbers.hpp"

namespace tessera::hf {

const nlohmann::json& field(const nlohmann::json& object, const char* key,
                            const std::string& where) {
  if (!object.is_object() || !object.contains(key)) {
    throw UsageError(where + " has no \"" + key + "\"; is this a Hugging Face tokenizer.json?");
  }
  return object[key];
}

std::optional<int32_t> token_id(const nlohmann::json& value) {
  const std::optional<int64_t> id = whole_number_in(value, 0, (int64_t{1} << 24) - 1);
  if (!id) return std::nullopt;
  return static_cast<int32_t>(*id);
}

std::string string_field(const nlohmann::json& object, const char* key, const std::string& where) {
  const auto& value = field(object, key, where);
  if (!value.is_string()) throw UsageError(where + ": \"" + key + "\" must be a string");
  return value.get<std::string>();
}

bool bool_field(const nlohmann::json& object, const char* key, const std::string& where,
                bool fallback) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return fallback;
  if (!object[key].is_boolean())
    throw UsageError(where + ": \"" + key + "\" must be true or false");
  return object[key].get<bool>();
}

const nlohmann::json& array_field(const nlohmann::json& object, const char* key,
                                  const std::string& where) {
  const auto& value = field(object, key, where);
  if (!value.is_array()) throw UsageError(where + ": \"" + key + "\" must be a list");
  return value;
}

std::string optional_string_field(const nlohmann::json& object, const char* key,
                                  const std::string& where) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return {};
  if (!object[key].is_string()) throw UsageError(where + ": \"" + key + "\" must be a string");
  return object[key].get<std::string>();
}

}  // namespace tessera::hf
