#include "io/manifest/manifest.hpp"

#include <array>
#include <fstream>
#include <map>
#include <sstream>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "core/host_facts.hpp"
#include "core/json_file.hpp"
#include "io/checkpoint/checkpoint.hpp"

namespace tessera {
namespace {

constexpr const char* kManifestFile = "manifest.json";

std::string text_hash(const std::string& text) {
  return to_hex16(fnv1a64(std::as_bytes(std::span(text.data(), text.size()))));
}

nlohmann::json start_record(const RunStart& start, const nlohmann::json& slurm) {
  const std::string toml = to_toml(start.config);
  return {{"start_time", utc_text(start.unix_time)},
          {"resumed_from_step", start.resumed_from_step},
          {"changed_settings", start.changed_settings},
          {"build", start.build},
          {"config", {{"toml", toml}, {"fnv1a64", text_hash(toml)}}},
          {"seed", {{"train", start.config.train.seed}, {"data", start.config.data.seed}}},
          {"layout",
           {{"dp", start.dp}, {"tp", start.tp}, {"pp", start.pp}, {"ranks", start.world_size}}},
          {"hosts", start.hosts},
          {"data", start.data},
          {"slurm", slurm}};
}

/// The leaves of `value` under `prefix` as "a.b.c" -> value. Shards are keyed by split and
/// file ("data.shards.train/train_000000.bin.fnv1a64"), host lists are one value.
void flatten(const nlohmann::json& value, const std::string& prefix,
             std::map<std::string, nlohmann::json>& leaves) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) flatten(child, prefix + "." + key, leaves);
  } else if (prefix == "data.shards" && value.is_array()) {
    for (const auto& shard : value) {
      const std::string name = shard.value("split", "?") + "/" + shard.value("file", "?");
      leaves[prefix + "." + name + ".tokens"] = shard.value("tokens", nlohmann::json());
      leaves[prefix + "." + name + ".fnv1a64"] = shard.value("fnv1a64", nlohmann::json());
    }
  } else {
    leaves[prefix] = value;
  }
}

std::string shown(const std::map<std::string, nlohmann::json>& leaves, const std::string& key) {
  auto it = leaves.find(key);
  if (it == leaves.end()) return "(absent)";
  return it->second.is_string() ? "'" + it->second.get<std::string>() + "'" : it->second.dump();
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw UsageError("cannot read " + file.string() + "; check its permissions");
  return text.str();
}

bool is_hdf5(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::array<char, 8> magic{};
  in.read(magic.data(), magic.size());
  return in && std::string(magic.data(), magic.size()) == "\x89HDF\r\n\x1a\n";
}

}  // namespace

nlohmann::json describe_data(const Config& config, const DataLoader& loader) {
  const DataConfig& data = config.data;
  nlohmann::json shards = nlohmann::json::array();
  for (const ShardChecksum& shard : loader.shard_checksums()) {
    shards.push_back({{"split", shard.split},
                      {"file", shard.file},
                      {"tokens", shard.tokens},
                      {"fnv1a64", to_hex16(shard.fnv1a64)}});
  }
  nlohmann::json described = {{"source", data.sources.empty() ? data.source : data.sources},
                              {"tokenizer", loader.tokenizer_id()},
                              {"vocab_size", loader.vocab_size()},
                              {"special_tokens", loader.special_tokens()},
                              {"verify", data.verify == DataVerify::open ? "open" : "off"},
                              {"shards", shards}};
  if (!data.sources.empty()) {  // a mix: what each source gives the run's train.steps
    const int64_t samples = int64_t{config.train.steps} * config.train.global_batch;
    for (const SourceDraw& source : loader.drawn(samples)) {
      described["sources"].push_back({{"source", source.source},
                                      {"weight", source.weight},
                                      {"samples_drawn", source.samples},
                                      {"tokens_drawn", source.tokens}});
    }
  }
  return described;
}

nlohmann::json describe_slurm_job(const EnvironmentReader& environment) {
  auto value = [&](const char* name) -> nlohmann::json {
    const char* text = environment(name);
    return text ? nlohmann::json(text) : nlohmann::json(nullptr);
  };
  return {{"job_id", value("SLURM_JOB_ID")},
          {"array_job_id", value("SLURM_ARRAY_JOB_ID")},
          {"array_task_id", value("SLURM_ARRAY_TASK_ID")},
          {"restart_count", value("SLURM_RESTART_COUNT")}};
}

nlohmann::json record_start(const std::optional<nlohmann::json>& previous, const RunStart& start,
                            const nlohmann::json& slurm) {
  nlohmann::json record = start_record(start, slurm);
  if (previous && previous->is_object() && previous->contains("restarts")) {
    nlohmann::json manifest = *previous;
    manifest["restarts"].push_back(std::move(record));
    return manifest;
  }
  nlohmann::json manifest = {{"manifest_version", kManifestVersion}};
  manifest.update(record);
  manifest["restarts"] = nlohmann::json::array();
  return manifest;
}

nlohmann::json latest_start(const nlohmann::json& manifest) {
  const auto& restarts = manifest.at("restarts");
  if (!restarts.empty()) return restarts.back();
  nlohmann::json first = manifest;
  first.erase("restarts");
  first.erase("manifest_version");
  return first;
}

std::string latest_config(const nlohmann::json& manifest) {
  return latest_start(manifest).at("config").at("toml").get<std::string>();
}

std::vector<std::string> manifest_differences(const nlohmann::json& recorded,
                                              const nlohmann::json& here) {
  std::vector<std::string> lines;
  if (recorded.contains("config")) {
    const auto& config = recorded["config"];
    const std::string hash = text_hash(config.value("toml", ""));
    if (config.value("fnv1a64", "") != hash) {
      lines.push_back("config.fnv1a64: recorded '" + config.value("fnv1a64", "") +
                      "', but the recorded config.toml hashes to '" + hash + "'");
    }
  }
  std::map<std::string, nlohmann::json> then, now;
  for (const char* part : {"build", "layout", "hosts", "data"}) {
    if (recorded.contains(part)) flatten(recorded[part], part, then);
    if (here.contains(part)) flatten(here[part], part, now);
  }
  std::map<std::string, bool> keys;
  for (const auto& [key, value] : then) keys[key] = true;
  for (const auto& [key, value] : now) keys[key] = true;
  for (const auto& [key, unused] : keys) {
    auto a = then.find(key), b = now.find(key);
    if (a != then.end() && b != now.end() && a->second == b->second) continue;
    lines.push_back(key + ": recorded " + shown(then, key) + ", here " + shown(now, key));
  }
  return lines;
}

nlohmann::json read_manifest(const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) {
    throw UsageError("manifest '" + file.string() +
                     "' not found; pass <run.dir>/manifest.json or a checkpoint step_*.h5");
  }
  const std::string text = is_hdf5(file) ? read_checkpoint_manifest(file) : read_text(file);
  nlohmann::json manifest = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_object() || !manifest.contains("restarts") ||
      !manifest.contains("config") || !manifest.contains("build")) {
    throw UsageError(file.string() +
                     " is not a tessera run manifest; pass <run.dir>/manifest.json or a "
                     "checkpoint step_*.h5");
  }
  if (manifest.value("manifest_version", 0) != kManifestVersion) {
    throw UsageError(file.string() + " has manifest_version " +
                     manifest.value("manifest_version", nlohmann::json(0)).dump() +
                     "; this tessera reads version " + std::to_string(kManifestVersion));
  }
  try {
    latest_config(manifest);
  } catch (const nlohmann::json::exception&) {
    throw UsageError(file.string() +
                     " has no config.toml string in its latest start; restore "
                     "the file from the run directory or a checkpoint");
  }
  return manifest;
}

void write_manifest(const std::filesystem::path& run_dir, const nlohmann::json& manifest) {
  write_json_file(run_dir / kManifestFile, manifest);
}

std::optional<nlohmann::json> load_manifest(const std::filesystem::path& run_dir,
                                            std::string& problem) {
  const auto path = run_dir / kManifestFile;
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::nullopt;
  try {
    return read_manifest(path);
  } catch (const UsageError& e) {
    problem = e.what();
    return std::nullopt;
  }
}

}  // namespace tessera
