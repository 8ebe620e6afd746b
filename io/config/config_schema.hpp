// The schema of tessera's configuration: one KeySpec per settable key. Parsing, `--set`
// overrides, to_toml and describe_config_keys all walk this one table, so a key is declared once.
// Internal to io/config; users see config.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/config/config.hpp"

namespace tessera::config_detail {

/// A value as TOML gives it: integer, float, bool or string.
using Value = std::variant<int64_t, double, bool, std::string>;

enum class ValueKind { integer, real, boolean, text };

/// Allowed interval of a numeric key, e.g. (0, inf) for a learning rate or [0, 1) for a beta.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  bool lo_inclusive = true;
  double hi = std::numeric_limits<double>::infinity();
  bool hi_inclusive = true;

  bool contains(double x) const;
  std::string describe() const;  ///< "> 0", ">= 1", "in [0, 1)", "" when unbounded
};

struct KeySpec {
  std::string_view name;  ///< "section.key"
  std::string_view description;
  ValueKind kind = ValueKind::integer;
  Range range;                            ///< numeric keys only
  std::vector<std::string_view> choices;  ///< text keys only; empty: any non-empty string
  bool may_be_empty = false;              ///< text keys whose empty value means "derive it"
  bool single_precision = false;          ///< real keys stored in a `float` field
  int64_t integer_max = 0;                ///< integer keys: the largest value the field holds
  std::string_view zero_word;             ///< integer keys: a word that also means 0 ("auto")
  /// Stores a value already converted to `kind` and checked against range and choices.
  std::function<void(Config&, const Value&)> store;
  std::function<Value(const Config&)> load;

  std::string_view section() const { return name.substr(0, name.find('.')); }
  std::string type_name() const;  ///< "integer >= 1", "float > 0", "one of gpt2, openlm", ...
};

/// The whole table, in the order keys appear in to_toml and the docs.
const std::vector<KeySpec>& schema();

/// The key with this full name, or nullptr.
const KeySpec* find_key(std::string_view name);

/// `value` as TOML text: 3, 0.001, true, "runs/tiny" (floats written shortest-exact).
std::string format_value(const Value& value);

/// `value` as TOML text, with a float stored in a `float` field written at float precision so
/// that to_toml prints 0.001 rather than 0.0010000000474974513.
std::string format_value(const KeySpec& key, const Value& value);

}  // namespace tessera::config_detail
