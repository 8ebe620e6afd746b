// Reading, overriding, checking and writing a Config, all driven by the key table in
// config_schema.cpp. Every problem the user can fix is a UsageError of one line.
#include "io/config/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "io/config/config_schema.hpp"

namespace tessera {
namespace {

using config_detail::find_key;
using config_detail::KeySpec;
using config_detail::schema;
using config_detail::Value;
using config_detail::ValueKind;

constexpr std::string_view kSeeDoc = "(see doc/configuration.md)";

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  for (const KeySpec& key : schema()) {
    std::string section(key.section());
    if (std::find(names.begin(), names.end(), section) == names.end()) names.push_back(section);
  }
  return names;
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
std::optional<std::string> closest(std::string_view name, const std::vector<std::string>& pool) {
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(2, name.size() / 4) + 1;
  for (const std::string& candidate : pool) {
    size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) best = candidate, best_distance = distance;
  }
  return best;
}

[[noreturn]] void unknown_section(std::string_view section, const std::string& where) {
  std::string message = "unknown section [" + std::string(section) + "] in " + where + "; ";
  if (auto guess = closest(section, section_names())) message += "did you mean [" + *guess + "]? ";
  throw UsageError(message + "(sections: " + join(section_names()) + "; see doc/configuration.md)");
}

[[noreturn]] void unknown_key(std::string_view name, const std::string& where) {
  std::vector<std::string> names, same_section;
  std::string_view section = name.substr(0, name.find('.'));
  for (const KeySpec& key : schema()) {
    names.emplace_back(key.name);
    if (key.section() == section) same_section.emplace_back(key.name.substr(section.size() + 1));
  }
  std::string message = "unknown key '" + std::string(name) + "' in " + where + "; ";
  if (auto guess = closest(name, names)) {
    throw UsageError(message + "did you mean '" + *guess + "'? " + std::string(kSeeDoc));
  }
  if (!same_section.empty()) {
    throw UsageError(message + "the keys of [" + std::string(section) + "] are " +
                     join(same_section) + " " + std::string(kSeeDoc));
  }
  unknown_section(section, where);
}

/// A value as quoted in an error message: strings in single quotes, like the user wrote them.
std::string show(const Value& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return "'" + *text + "'";
  return config_detail::format_value(value);
}

[[noreturn]] void bad_value(const KeySpec& key, const std::string& given, const std::string& where,
                            const std::string& problem) {
  std::string example = config_detail::format_value(key, key.load(Config{}));
  throw UsageError(std::string(key.name) + " = " + given + " in " + where + " " + problem +
                   "; e.g. " + std::string(key.name) + " = " + example + " " +
                   std::string(kSeeDoc));
}

/// "must be an integer >= 1", "must be one of gpt2, openlm", ...
std::string must_be(const KeySpec& key) {
  std::string type = key.type_name();
  if (type.starts_with("one of")) return "must be " + type;
  return std::string(type.starts_with("integer") ? "must be an " : "must be a ") + type;
}

/// Converts `given` to the key's kind and checks range and choices; throws on any mismatch.
Value checked(const KeySpec& key, const Value& given, const std::string& where) {
  const std::string shown = show(given);
  switch (key.kind) {
    case ValueKind::integer: {
      if (const auto* word = std::get_if<std::string>(&given);
          word && !key.zero_word.empty() && *word == key.zero_word) {
        return int64_t{0};
      }
      const auto* number = std::get_if<int64_t>(&given);
      if (!number || !key.range.contains(static_cast<double>(*number))) {
        bad_value(key, shown, where, must_be(key));
      }
      if (*number > key.integer_max) {
        bad_value(key, shown, where, "is too large; at most " + std::to_string(key.integer_max));
      }
      return given;
    }
    case ValueKind::real: {
      const auto* integer = std::get_if<int64_t>(&given);
      const auto* real = std::get_if<double>(&given);
      if (!integer && !real) bad_value(key, shown, where, must_be(key));
      double number = integer ? static_cast<double>(*integer) : *real;
      if (!std::isfinite(number) || !key.range.contains(number)) {
        bad_value(key, shown, where, must_be(key));
      }
      return number;
    }
    case ValueKind::boolean:
      if (!std::holds_alternative<bool>(given)) bad_value(key, shown, where, must_be(key));
      return given;
    case ValueKind::text:
      break;
  }
  const auto* text = std::get_if<std::string>(&given);
  if (!text) bad_value(key, shown, where, must_be(key) + " in double quotes");
  if (!key.choices.empty() &&
      std::find(key.choices.begin(), key.choices.end(), *text) == key.choices.end()) {
    bad_value(key, shown, where, "is not " + key.type_name());
  }
  if (text->empty() && !key.may_be_empty) bad_value(key, shown, where, "must not be empty");
  return given;
}

std::optional<Value> to_value(const toml::node& node) {
  if (const auto* v = node.as_integer()) return Value(v->get());
  if (const auto* v = node.as_floating_point()) return Value(v->get());
  if (const auto* v = node.as_boolean()) return Value(v->get());
  if (const auto* v = node.as_string()) return Value(v->get());
  return std::nullopt;
}

std::string at(const std::string& source, const toml::source_region& region) {
  return source + ":" + std::to_string(region.begin.line);
}

/// A key written above every [section] header, e.g. `steps = 3` at the top of the file.
[[noreturn]] void key_outside_section(std::string_view name, const std::string& where) {
  std::string message = "key '" + std::string(name) + "' in " + where + " is outside any section; ";
  for (const KeySpec& key : schema()) {
    if (key.name.substr(key.section().size() + 1) == name) {
      throw UsageError(message + "move it under [" + std::string(key.section()) + "] (it is '" +
                       std::string(key.name) + "') " + std::string(kSeeDoc));
    }
  }
  throw UsageError(message + "put it under its [section] " + std::string(kSeeDoc));
}

std::string describe_node(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "a value";
  }
}

void apply_table(Config& config, const toml::table& root, const std::string& source) {
  const std::vector<std::string> sections = section_names();
  for (auto&& [section_key, section_node] : root) {
    std::string section_name(section_key.str());
    const auto* section = section_node.as_table();
    if (!section) key_outside_section(section_name, at(source, section_key.source()));
    if (std::find(sections.begin(), sections.end(), section_name) == sections.end()) {
      unknown_section(section_name, at(source, section_key.source()));
    }
    for (auto&& [key_name, node] : *section) {
      std::string name = section_name + "." + std::string(key_name.str());
      const KeySpec* key = find_key(name);
      if (!key) unknown_key(name, at(source, key_name.source()));
      std::string where = at(source, node.source());
      std::optional<Value> value = to_value(node);
      if (!value) bad_value(*key, describe_node(node), where, must_be(*key));
      key->store(config, checked(*key, *value, where));
    }
  }
}

std::string trim(std::string_view text) {
  size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  return std::string(text.substr(first, text.find_last_not_of(" \t") - first + 1));
}

/// The override's value as TOML; a bare word that is not valid TOML (runs/x, openlm) is a string,
/// and so is anything given to a string key (run.dir=2024 names the directory "2024").
Value override_value(const std::string& raw, ValueKind kind) {
  try {
    toml::table parsed = toml::parse("value = " + raw);
    if (parsed.size() == 1) {
      if (std::optional<Value> value = to_value(*parsed.get("value"))) {
        if (kind != ValueKind::text || std::holds_alternative<std::string>(*value)) return *value;
      }
    }
  } catch (const toml::parse_error&) {
    // not TOML: the text itself
  }
  return raw;
}

void apply_override(Config& config, const std::string& text) {
  size_t equals = text.find('=');
  if (equals == std::string::npos) {
    throw UsageError("override '" + text +
                     "' has no '='; write --set section.key=value, e.g. --set train.lr=3e-4");
  }
  std::string name = trim(std::string_view(text).substr(0, equals));
  std::string where = "--set " + text;
  const KeySpec* key = find_key(name);
  if (!key) unknown_key(name, where);
  Value value = override_value(trim(std::string_view(text).substr(equals + 1)), key->kind);
  key->store(config, checked(*key, value, where));
}

int64_t derived_ffn_hidden(const ModelConfig& model) {
  int64_t d_model = model.d_model;
  if (model.family == ModelFamily::gpt2) return 4 * d_model;
  return 256 * ((8 * d_model + 3 * 256 - 1) / (3 * 256));  // 256 * ceil(8 d / 3 / 256)
}

void derive(Config& config) {
  ModelConfig& model = config.model;
  if (model.ffn_hidden != 0) return;
  int64_t ffn_hidden = derived_ffn_hidden(model);
  if (ffn_hidden > std::numeric_limits<int>::max()) {
    throw UsageError("model.d_model = " + std::to_string(model.d_model) +
                     " makes the derived model.ffn_hidden overflow; pick a smaller d_model");
  }
  model.ffn_hidden = static_cast<int>(ffn_hidden);
}

[[noreturn]] void inconsistent(const std::string& message) { throw UsageError(message); }

void check_model(const ModelConfig& model) {
  auto d = std::to_string(model.d_model), h = std::to_string(model.n_heads);
  if (model.d_model % model.n_heads != 0) {
    inconsistent("model.d_model = " + d + " is not divisible by model.n_heads = " + h +
                 "; pick a multiple of " + h + " for d_model or a divisor of " + d +
                 " for n_heads");
  }
  if (model.rotary() && model.head_dim() % 2 != 0) {
    inconsistent("model.d_model / model.n_heads = " + d + " / " + h + " = " +
                 std::to_string(model.head_dim()) +
                 " is odd, but openlm's rotary embedding rotates pairs of channels; pick "
                 "d_model and n_heads with an even quotient");
  }
}

std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  for (size_t start = 0;;) {
    const size_t comma = text.find(',', start);
    items.push_back(trim(std::string_view(text).substr(start, comma - start)));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

}  // namespace

std::vector<DataSourceSpec> data_sources(const DataConfig& data) {
  const std::vector<std::string> dirs = comma_list(data.sources);
  const std::vector<std::string> weights = comma_list(data.weights);
  if (dirs.empty() && !weights.empty()) {
    throw UsageError("data.weights = \"" + data.weights +
                     "\" needs data.sources, the directories they weigh; set both or neither");
  }
  if (!weights.empty() && weights.size() != dirs.size()) {
    throw UsageError(
        fmt::format("data.sources names {} directories but data.weights gives {} "
                    "weights; give one weight per source",
                    dirs.size(), weights.size()));
  }
  std::vector<DataSourceSpec> specs;
  for (size_t i = 0; i < dirs.size(); ++i) {
    if (dirs[i].empty()) {
      throw UsageError("data.sources = \"" + data.sources +
                       "\" has an empty entry; separate directories with single commas");
    }
    double weight = std::numeric_limits<double>::quiet_NaN();
    if (!weights.empty()) {
      char* end = nullptr;
      weight = std::strtod(weights[i].c_str(), &end);
      if (weights[i].empty() || *end != '\0' || !std::isfinite(weight) || weight <= 0) {
        throw UsageError("data.weights entry '" + weights[i] +
                         "' is not a positive number; e.g. data.weights = \"0.7,0.3\"");
      }
    }
    specs.push_back({dirs[i], weight});
  }
  return specs;
}

namespace {

void check_data(const DataConfig& data) {
  data_sources(data);
  if (!data.sources.empty() && data.source != DataConfig{}.source) {
    inconsistent("data.source = '" + data.source + "' and data.sources = '" + data.sources +
                 "' are both set; use data.source for one directory, data.sources for a mix");
  }
  const std::string& name = data.tokenizer;
  const bool known = name == "byte" || name == "sentencepiece" || name == "hf" ||
                     (name.starts_with("hf:") && name.size() > 3);
  if (!known) {
    inconsistent("data.tokenizer = '" + data.tokenizer +
                 "' is not a tokenizer tessera reads; use byte, sentencepiece, hf (the copy a "
                 "prepared dataset keeps) or hf:PATH/tokenizer.json");
  }
}

void check_train(const TrainConfig& train) {
  auto global = std::to_string(train.global_batch), micro = std::to_string(train.micro_batch);
  if (train.global_batch % train.micro_batch != 0) {
    inconsistent("train.global_batch = " + global + " is not divisible by train.micro_batch = " +
                 micro + "; pick a multiple of " + micro);
  }
  if (train.warmup_steps > train.steps) {
    inconsistent("train.warmup_steps = " + std::to_string(train.warmup_steps) +
                 " exceeds train.steps = " + std::to_string(train.steps) +
                 "; lower warmup_steps or raise steps");
  }
  if (train.min_lr > train.lr) {
    const KeySpec& lr = *find_key("train.lr");
    inconsistent("train.min_lr = " + config_detail::format_value(lr, double{train.min_lr}) +
                 " exceeds train.lr = " + config_detail::format_value(lr, double{train.lr}) +
                 "; the cosine decays from lr down to min_lr, so pick min_lr <= lr");
  }
}

/// The largest head_dim the CUDA backend's attention kernels are built for
/// (backend/cuda/flash_attention.cuh, kMaxHeadDim; cuDNN's engines take no more either).
constexpr int kCudaMaxHeadDim = 128;

void check_backend(const Config& config) {
  if (config.train.backend == BackendKind::kokkos && config.train.precision == Precision::bf16) {
    inconsistent(
        "train.backend = \"kokkos\" computes in fp32 only; set train.precision = \"fp32\", or "
        "use train.backend = \"cuda\" or \"cpu\" for bf16");
  }
  if (config.train.backend != BackendKind::cuda) return;
  if (config.parallel.deterministic) {
    inconsistent(
        "parallel.deterministic sums the gradients on the host, which train.backend = \"cuda\" "
        "does not do; set parallel.deterministic = false, or train.backend = \"cpu\"");
  }
  if (config.model.head_dim() > kCudaMaxHeadDim) {
    inconsistent("model.d_model / model.n_heads = " + std::to_string(config.model.head_dim()) +
                 " is a head size above " + std::to_string(kCudaMaxHeadDim) +
                 ", the most train.backend = \"cuda\" runs attention for; use more heads "
                 "(model.n_heads) or train.backend = \"cpu\"");
  }
}

/// Sizes beyond any model tessera is built for: products that would overflow the kernels'
/// 32-bit row counts, or so many layers or parameters that the model's bookkeeping alone would
/// exhaust memory (or run for minutes) before the first buffer could be refused. Whether a
/// sensible model fits the job's memory is a separate, later check (the backend's allocation).
void check_sizes(const Config& config) {
  const ModelConfig& model = config.model;
  constexpr int64_t kMaxRows = std::numeric_limits<int32_t>::max();
  const int64_t rows = static_cast<int64_t>(config.train.micro_batch) * model.seq_len;
  if (rows > kMaxRows) {
    inconsistent("train.micro_batch x model.seq_len = " + std::to_string(rows) +
                 " token rows per microbatch is more than the kernels index (2^31 - 1); lower "
                 "train.micro_batch or model.seq_len");
  }
  constexpr int kMaxLayers = 10000;
  if (model.n_layers > kMaxLayers) {
    inconsistent("model.n_layers = " + std::to_string(model.n_layers) + " is more than " +
                 std::to_string(kMaxLayers) +
                 " layers, beyond any model tessera trains; check the value");
  }
  const double d = model.d_model, ffn = model.ffn_hidden, vocab = model.vocab_size;
  const double per_layer = 4.0 * d * d + 3.0 * d * ffn;  // attention and the largest MLP
  const double parameters = model.n_layers * per_layer + 2.0 * vocab * d;  // untied at most
  constexpr double kMaxParameters = 1e13;
  if (parameters > kMaxParameters) {
    inconsistent(fmt::format(
        "model.d_model = {}, model.n_layers = {}, model.ffn_hidden = {} and model.vocab_size = "
        "{} make about {:.3g} parameters, beyond any model tessera trains (10^13); check the "
        "values",
        model.d_model, model.n_layers, model.ffn_hidden, model.vocab_size, parameters));
  }
}

void check_debug(const Config& config) {
  if (config.debug.stall_at_step > 0 && config.train.hang_timeout_s <= 0) {
    inconsistent(
        "debug.stall_at_step stalls a rank until the hang watchdog ends the job, and "
        "train.hang_timeout_s = 0 turns the watchdog off; set a timeout, or stall_at_step = 0");
  }
}

Config parse_named(const std::string& toml_text, const std::string& source,
                   const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& error) {
    std::string description(error.description());
    std::replace(description.begin(), description.end(), '\n', ' ');
    throw UsageError("TOML syntax error in " + at(source, error.source()) + ":" +
                     std::to_string(error.source().begin.column) + ": " + description +
                     "; fix that line " + std::string(kSeeDoc));
  }
  Config config;
  apply_table(config, root, source);
  for (const std::string& item : overrides) apply_override(config, item);
  derive(config);
  check_model(config.model);
  check_train(config.train);
  check_data(config.data);
  check_backend(config);
  check_sizes(config);
  check_debug(config);
  return config;
}

}  // namespace

Config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) {
    std::string problem = std::filesystem::exists(file, error) ? "is not a file" : "not found";
    throw UsageError("config file '" + file.string() + "' " + problem +
                     "; pass the path of a TOML file, e.g. configs/tiny.toml");
  }
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    throw UsageError("config file '" + file.string() + "' cannot be read; check its permissions");
  }
  return parse_named(text.str(), file.string(), overrides);
}

Config parse_config(const std::string& toml_text, const std::vector<std::string>& overrides) {
  return parse_named(toml_text, "<config text>", overrides);
}

std::string to_toml(const Config& config) {
  std::string text =
      "# tessera configuration, fully resolved (every key; see doc/configuration.md)\n";
  std::string_view section;
  for (const KeySpec& key : schema()) {
    if (key.section() != section) {
      section = key.section();
      text += "\n[" + std::string(section) + "]\n";
    }
    text += std::string(key.name.substr(section.size() + 1)) + " = " +
            config_detail::format_value(key, key.load(config)) + "\n";
  }
  return text;
}

std::vector<SettingChange> changed_settings(const Config& before, const Config& after) {
  std::vector<SettingChange> changes;
  for (const KeySpec& key : schema()) {
    std::string old_value = config_detail::format_value(key, key.load(before));
    std::string new_value = config_detail::format_value(key, key.load(after));
    if (old_value != new_value)
      changes.push_back({std::string(key.name), std::move(old_value), std::move(new_value)});
  }
  return changes;
}

std::vector<ConfigKeyInfo> describe_config_keys() {
  std::vector<ConfigKeyInfo> keys;
  const Config defaults;
  for (const KeySpec& key : schema()) {
    keys.push_back({std::string(key.name), key.type_name(),
                    config_detail::format_value(key, key.load(defaults)),
                    std::string(key.description)});
  }
  return keys;
}

}  // namespace tessera
