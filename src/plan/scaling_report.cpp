#include "plan/scaling_report.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "core/json_numbers.hpp"
#include "parallel/layout/training_layout.hpp"
#include "plan/memory_plan.hpp"
#include "plan/step_time.hpp"

namespace tessera {
namespace {

/// The point's configuration: the one its run wrote, or the sweep's with its settings.
Config point_config(const std::filesystem::path& run_dir, const SweepDescription& sweep,
                    const SweepPoint& point) {
  if (std::filesystem::exists(run_dir / "config.toml"))
    return load_config(run_dir / "config.toml", {});
  std::vector<std::string> overrides = sweep.overrides;
  overrides.insert(overrides.end(), point.settings.begin(), point.settings.end());
  return load_config(sweep.config, overrides);
}

void predict(ReportRow& row, const Config& config, const std::optional<HardwareProfile>& profile) {
  const TrainingLayout layout = resolve_layout(config, row.point.ranks);
  const int threads = profile ? profile->threads_per_device : 1;
  const BackendKind backend = profile ? profile->backend : config.train.backend;
  row.predicted_peak_bytes = static_cast<double>(
      plan_memory(config, layout, memory_traits(backend, threads)).peak().total());
  if (!profile) return;
  HardwareProfile placed = *profile;  // the sweep's ranks a node decide which links a group uses
  placed.devices_per_node = std::max(1, row.point.ranks / std::max(1, row.point.nodes));
  if (placed.devices_per_node > profile->devices_per_node) {
    row.detail += fmt::format(
        "{}{} ranks a node on {} devices a node: oversubscribed, the prediction assumes a device "
        "a rank",
        row.detail.empty() ? "" : "; ", placed.devices_per_node, profile->devices_per_node);
  }
  const StepTime time = plan_step_time(config, layout, placed);
  row.predicted_step_s = time.total_s;
  row.predicted_tokens_per_s = time.tokens_per_s;
  row.predicted_mfu = time.mfu;
}

ReportRow report_point(const std::filesystem::path& dir, const SweepDescription& sweep,
                       const SweepPoint& point, const std::optional<HardwareProfile>& profile) {
  ReportRow row;
  row.point = point;
  const std::filesystem::path run_dir = dir / point.run_dir;
  row.measured = read_json_file(run_dir / "result.json");
  if (row.measured) {
    row.status = "ok";
  } else if (std::filesystem::exists(run_dir)) {
    row.status = "failed";
    row.detail = "ran but wrote no result.json: see " + (run_dir / "metrics.jsonl").string() +
                 " and the job's log in " + (run_dir / "slurm").string();
  } else {
    row.status = "missing";
    row.detail = "never ran: no " + run_dir.string();
  }
  try {
    predict(row, point_config(run_dir, sweep, point), profile);
  } catch (const UsageError& error) {
    row.detail += fmt::format("{}no prediction: {}", row.detail.empty() ? "" : "; ", error.what());
  }
  return row;
}

double measured_value(const ReportRow& row, const char* key) {
  return row.measured ? row.measured->value(key, 0.0) : 0.0;
}

double measured_step(const ReportRow& row, const char* part) {
  return row.measured ? row.measured->at("step_s").value(part, 0.0) : 0.0;
}

std::string number(double value) { return value == 0.0 ? "" : fmt::format("{:.6g}", value); }

std::string relative_error(double predicted, double measured) {
  if (predicted == 0.0 || measured == 0.0) return "";
  return fmt::format("{:+.1f}%", 100.0 * (predicted - measured) / measured);
}

}  // namespace

nlohmann::json to_json(const SweepDescription& sweep) {
  nlohmann::json points = nlohmann::json::array();
  for (const SweepPoint& p : sweep.points) {
    points.push_back({{"label", p.label},
                      {"nodes", p.nodes},
                      {"ranks", p.ranks},
                      {"run_dir", p.run_dir.string()},
                      {"settings", p.settings}});
  }
  return {{"format", "tessera-sweep"},
          {"version", 1},
          {"config", sweep.config.string()},
          {"overrides", sweep.overrides},
          {"mode", sweep.mode},
          {"hardware", sweep.hardware},
          {"points", points}};
}

SweepDescription read_sweep_description(const std::filesystem::path& file) {
  const std::optional<nlohmann::json> json = read_json_file(file);
  if (!json || json->value("format", "") != "tessera-sweep") {
    throw UsageError(file.string() +
                     " is not a sweep description; pass the directory tessera sweep wrote");
  }
  try {
    SweepDescription sweep;
    sweep.config = json->at("config").get<std::string>();
    sweep.overrides = json->at("overrides").get<std::vector<std::string>>();
    sweep.mode = json->at("mode").get<std::string>();
    sweep.hardware = json->at("hardware").get<std::string>();
    // get<int> of a float or of a number past int's range is an unchecked cast.
    const auto count = [&](const nlohmann::json& point, const char* key) {
      const std::optional<int64_t> number = whole_number_in(point.at(key), 1, 1 << 24);
      if (!number) {
        throw UsageError(file.string() + " is damaged (a point's \"" + key +
                         "\" is not a whole number from 1 to 2^24); run tessera sweep again");
      }
      return static_cast<int>(*number);
    };
    for (const nlohmann::json& p : json->at("points")) {
      sweep.points.push_back({p.at("label").get<std::string>(), count(p, "nodes"),
                              count(p, "ranks"), p.at("run_dir").get<std::string>(),
                              p.at("settings").get<std::vector<std::string>>()});
    }
    return sweep;
  } catch (const nlohmann::json::exception& error) {
    throw UsageError(file.string() + " is damaged (" + error.what() + "); run tessera sweep again");
  }
}

std::vector<ReportRow> build_report(const std::filesystem::path& dir, const SweepDescription& sweep,
                                    const std::optional<HardwareProfile>& profile) {
  std::vector<ReportRow> rows;
  for (const SweepPoint& point : sweep.points)
    rows.push_back(report_point(dir, sweep, point, profile));
  // Efficiency: tokens/s per rank against the smallest point that has a result (strong
  // scaling's speedup over ideal and weak scaling's per-rank throughput are this one ratio).
  const ReportRow* base = nullptr;
  for (const ReportRow& row : rows) {
    if (row.measured && (base == nullptr || row.point.ranks < base->point.ranks)) base = &row;
  }
  if (base != nullptr) {
    const double base_rate = measured_value(*base, "tokens_per_s") / base->point.ranks;
    for (ReportRow& row : rows) {
      if (row.measured)
        row.efficiency = measured_value(row, "tokens_per_s") / row.point.ranks / base_rate;
    }
  }
  return rows;
}

std::string report_csv(const std::vector<ReportRow>& rows) {
  std::string out =
      "label,nodes,ranks,status,tokens_per_s,predicted_tokens_per_s,prediction_error,"
      "step_s,predicted_step_s,efficiency,mfu,predicted_mfu,peak_buffer_bytes,"
      "predicted_peak_bytes,compute_s,tp_comm_s,pipeline_wait_s,dp_wait_s,optimizer_s,detail\n";
  for (const ReportRow& r : rows) {
    const double tokens = measured_value(r, "tokens_per_s");
    std::string detail = r.detail;
    std::replace(detail.begin(), detail.end(), '"', '\'');
    out += fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n", r.point.label,
        r.point.nodes, r.point.ranks, r.status, number(tokens), number(r.predicted_tokens_per_s),
        relative_error(r.predicted_tokens_per_s, tokens), number(measured_step(r, "total")),
        number(r.predicted_step_s), number(r.efficiency), number(measured_value(r, "mfu")),
        number(r.predicted_mfu), number(measured_value(r, "peak_buffer_bytes")),
        number(r.predicted_peak_bytes), number(measured_step(r, "compute")),
        number(measured_step(r, "tp_comm")), number(measured_step(r, "pipeline_wait")),
        number(measured_step(r, "dp_wait")), number(measured_step(r, "optimizer")), detail);
  }
  return out;
}

std::string report_markdown(const std::vector<ReportRow>& rows, const SweepDescription& sweep) {
  constexpr double kMiB = 1024.0 * 1024.0;
  std::string out = fmt::format(
      "{} scaling of {} ({} points{})\n\n"
      "| point | nodes | ranks | status | tokens/s | planned | error | efficiency | MFU | "
      "peak MiB | planned MiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
      sweep.mode == "weak" ? "Weak" : "Strong", sweep.config.filename().string(), rows.size(),
      sweep.hardware.empty() ? "" : ", predictions for " + sweep.hardware);
  for (const ReportRow& r : rows) {
    const double tokens = measured_value(r, "tokens_per_s");
    out += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.point.label, r.point.nodes,
        r.point.ranks, r.status, r.measured ? fmt::format("{:.0f}", tokens) : "-",
        r.predicted_tokens_per_s > 0 ? fmt::format("{:.0f}", r.predicted_tokens_per_s) : "-",
        relative_error(r.predicted_tokens_per_s, tokens),
        r.measured ? fmt::format("{:.2f}", r.efficiency) : "-",
        r.measured ? fmt::format("{:.1f}%", 100 * measured_value(r, "mfu")) : "-",
        r.measured ? fmt::format("{:.1f}", measured_value(r, "peak_buffer_bytes") / kMiB) : "-",
        fmt::format("{:.1f}", r.predicted_peak_bytes / kMiB));
  }
  for (const ReportRow& r : rows) {
    if (!r.detail.empty()) out += fmt::format("\n- {} {}: {}", r.point.label, r.status, r.detail);
  }
  return out + "\n";
}

nlohmann::json report_json(const std::vector<ReportRow>& rows, const SweepDescription& sweep) {
  nlohmann::json points = nlohmann::json::array();
  for (const ReportRow& r : rows) {
    points.push_back({{"label", r.point.label},
                      {"layout", r.point.run_dir.filename().string()},
                      {"nodes", r.point.nodes},
                      {"ranks", r.point.ranks},
                      {"status", r.status},
                      {"detail", r.detail},
                      {"measured", r.measured ? *r.measured : nlohmann::json()},
                      {"predicted",
                       {{"step_s", r.predicted_step_s},
                        {"tokens_per_s", r.predicted_tokens_per_s},
                        {"mfu", r.predicted_mfu},
                        {"peak_bytes", r.predicted_peak_bytes}}},
                      {"efficiency", r.efficiency}});
  }
  return {{"mode", sweep.mode},
          {"config", sweep.config.string()},
          {"hardware", sweep.hardware},
          {"points", points}};
}

}  // namespace tessera
