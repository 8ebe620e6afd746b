// `tessera report DIR [--hardware PROFILE]`: reads DIR/sweep.json and every point's result.json,
// writes DIR/report.csv, report.md and report.json, then draws the plots with
// scripts/plot_scaling.py (python3 and matplotlib; without them the plots are skipped, said).
#include "cli/report_command.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "core/shipped_files.hpp"
#include "plan/scaling_report.hpp"

extern char** environ;

namespace tessera {
namespace {

struct ReportOptions {
  std::string dir;
  std::string hardware;  ///< overrides sweep.json's
};

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  if (!out)
    throw UsageError("cannot write " + file.string() +
                     "; check that the sweep directory is writable");
}

/// Runs python3 on the plotting script (an argument vector, no shell); false when it failed.
bool draw_plots(const std::filesystem::path& report_json) {
  const std::vector<std::filesystem::path> search =
      shipped_file_search_path("TESSERA_SCRIPTS_PATH", "scripts", TESSERA_SOURCE_SCRIPTS);
  std::filesystem::path script;
  for (const auto& dir : search) {
    if (std::filesystem::is_regular_file(dir / "plot_scaling.py")) {
      script = dir / "plot_scaling.py";
      break;
    }
  }
  if (script.empty()) return false;
  // Debian's interpreter first: it has python3-matplotlib, where a pyenv or venv python3
  // earlier on PATH may not.
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    std::vector<std::string> words = {python, script.string(), report_json.string()};
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    pid_t child = 0;
    if (posix_spawnp(&child, python, nullptr, nullptr, argv.data(), environ) != 0) continue;
    int status = 0;
    if (waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      return true;
    }
  }
  return false;
}

void run(const ReportOptions& options) {
  const std::filesystem::path dir = options.dir;
  const SweepDescription sweep = read_sweep_description(dir / "sweep.json");
  const std::string hardware = options.hardware.empty() ? sweep.hardware : options.hardware;
  std::optional<HardwareProfile> profile;
  if (!hardware.empty()) profile = load_hardware_profile(hardware, hardware_search_path());
  const std::vector<ReportRow> rows = build_report(dir, sweep, profile);
  write_text(dir / "report.csv", report_csv(rows));
  const std::string markdown = report_markdown(rows, sweep);
  write_text(dir / "report.md", markdown);
  write_json_file(dir / "report.json", report_json(rows, sweep));
  std::cout << markdown;
  const bool plotted = draw_plots(dir / "report.json");
  std::cerr << "tessera report: wrote " << (dir / "report.csv").string() << ", report.md, "
            << "report.json"
            << (plotted ? " and the plots (*.png)"
                        : "; no plots: scripts/plot_scaling.py needs python3 with matplotlib "
                          "(apt install python3-matplotlib)")
            << "\n";
}

}  // namespace

void add_report_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "report", "A sweep's points, measured beside planned: CSV, Markdown and PNG plots");
  auto options = std::make_shared<ReportOptions>();
  cmd->add_option("dir", options->dir, "The sweep directory (it holds sweep.json)")->required();
  cmd->add_option("--hardware", options->hardware,
                  "Hardware profile for the predictions (default: the sweep's)");
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
