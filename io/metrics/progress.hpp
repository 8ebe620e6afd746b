// Console progress of a training run: a redrawn bar on a terminal, one plain line per logged
// step elsewhere (a Slurm batch log, a pipe), where a bar's carriage returns would be noise.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "io/metrics/metrics.hpp"

namespace tessera {

enum class ProgressStyle { bar, plain };

/// log.progress ("auto", "bar" or "plain") to a style; "auto" is bar on a terminal.
/// Throws UsageError on any other mode.
ProgressStyle choose_progress_style(std::string_view mode, bool is_terminal);

/// Whether standard output is a terminal (isatty).
bool stdout_is_terminal();

/// Seconds left, from the mean step time since `first_step` (the step this process started
/// from, 0 unless resumed); negative when no step has completed yet.
double eta_seconds(const StepReport& report, int64_t first_step);

/// "00:01:12"; hours grow past 24 ("123:04:05"); "--:--:--" for a negative (unknown) time.
std::string format_duration(double seconds);

/// Tokens per second in short form: "950", "10.2k", "1.25M".
std::string format_rate(double per_second);

/// `step 40/300 | loss 3.2104 | lr 2.9e-03 | grad_norm 0.812 | 10.2k tok/s | MFU 12.3% | ETA ...`
std::string format_plain_line(const StepReport& report, int64_t first_step);

/// `[######..............]  40/300 | loss 3.2104 | 10.2k tok/s | ETA 00:01:12`
std::string format_bar_line(const StepReport& report, int64_t first_step, int bar_width = 20);

/// Shows step reports and other lines on one stream, in the chosen style.
class ProgressDisplay {
 public:
  ProgressDisplay(std::ostream& out, ProgressStyle style, int64_t first_step = 0);
  ~ProgressDisplay();  ///< ends a visible bar's line
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  /// Shows a logged step: redraws the bar, or prints one plain line.
  void update(const StepReport& report);
  /// Prints a line of its own (eval results, checkpoints); with a bar, above it.
  void message(std::string_view line);
  /// Ends the bar's line so that later output starts on a fresh one.
  void finish();

 private:
  void draw_bar();

  std::ostream& out_;
  ProgressStyle style_;
  int64_t first_step_;
  std::string bar_;  ///< the bar line on screen, empty when none
};

}  // namespace tessera
