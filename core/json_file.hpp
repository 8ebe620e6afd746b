// JSON files that readers may open at any moment (a manifest, dataset.json, a sweep's record):
// written whole or not at all.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

namespace tessera {

/// Writes `value` (indented) to `path` through a temporary file beside it and a rename, so a
/// reader sees the old file or the new one, never half of one. UsageError naming the file and
/// its directory when it cannot be written.
void write_json_file(const std::filesystem::path& path, const nlohmann::json& value);

/// The JSON in `path`; nullopt when there is no such file or it does not parse.
std::optional<nlohmann::json> read_json_file(const std::filesystem::path& path);

}  // namespace tessera
