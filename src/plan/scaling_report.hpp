// A scaling study's report: every point of a sweep (a `tessera train` run directory) with what it
// measured (result.json) beside what the planner predicts for its layout, the scaling efficiency
// against the smallest point, and the points that failed or never ran, named as such
// (`tessera report`, doc/scaling.md).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "plan/hardware_profile.hpp"

namespace tessera {

/// One point as the sweep planned it: sweep.json's entry.
struct SweepPoint {
  std::string label;  ///< e.g. "4r-dp4"
  int nodes = 1;
  int ranks = 1;
  std::filesystem::path run_dir;      ///< relative to the sweep directory
  std::vector<std::string> settings;  ///< --set overrides of the point
};

/// sweep.json: what `tessera sweep` wrote before submitting.
struct SweepDescription {
  std::filesystem::path config;  ///< the configuration every point starts from
  std::vector<std::string> overrides;
  std::string mode = "strong";  ///< strong: one global batch; weak: global batch x ranks
  std::string hardware;         ///< profile the predictions use ("" for none)
  std::vector<SweepPoint> points;
};

nlohmann::json to_json(const SweepDescription& sweep);
/// Reads `file`; UsageError naming it when it is not a sweep description.
SweepDescription read_sweep_description(const std::filesystem::path& file);

/// A point in the report.
struct ReportRow {
  SweepPoint point;
  std::string status;  ///< "ok", "failed" (ran, no result.json) or "missing" (never ran)
  std::string detail;  ///< why, for failed and missing points
  std::optional<nlohmann::json> measured;  ///< result.json
  double predicted_step_s = 0.0, predicted_tokens_per_s = 0.0, predicted_mfu = 0.0;
  double predicted_peak_bytes = 0.0;
  double efficiency = 0.0;  ///< tokens/s per rank over the smallest point's (0: none)
};

/// The report of the sweep in `dir` (its sweep.json), predictions from `profile` when given.
std::vector<ReportRow> build_report(const std::filesystem::path& dir, const SweepDescription& sweep,
                                    const std::optional<HardwareProfile>& profile);

/// The rows as CSV (one line a point, failed and missing ones included) and as Markdown.
std::string report_csv(const std::vector<ReportRow>& rows);
std::string report_markdown(const std::vector<ReportRow>& rows, const SweepDescription& sweep);
nlohmann::json report_json(const std::vector<ReportRow>& rows, const SweepDescription& sweep);

}  // namespace tessera
