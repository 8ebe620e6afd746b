#include "io/metrics/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ostream>

#include "core/error.hpp"

namespace tessera {

ProgressStyle choose_progress_style(std::string_view mode, bool is_terminal) {
  if (mode == "bar") return ProgressStyle::bar;
  if (mode == "plain") return ProgressStyle::plain;
  if (mode == "auto") return is_terminal ? ProgressStyle::bar : ProgressStyle::plain;
  throw UsageError("log.progress = '" + std::string(mode) +
                   "' is not one of auto, bar, plain; e.g. log.progress = \"auto\"");
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

double eta_seconds(const StepReport& report, int64_t first_step) {
  int64_t done = report.step - first_step;
  if (done <= 0) return -1;
  double mean_step_s = report.elapsed_s / static_cast<double>(done);
  return mean_step_s * static_cast<double>(std::max<int64_t>(0, report.total_steps - report.step));
}

std::string format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "--:--:--";
  auto total = static_cast<int64_t>(std::llround(seconds));
  return fmt::format("{:02}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
}

std::string format_rate(double per_second) {
  if (per_second < 999.5) return fmt::format("{:.0f}", per_second);
  if (per_second < 999.5e3) return fmt::format("{:.1f}k", per_second / 1e3);
  if (per_second < 999.5e6) return fmt::format("{:.2f}M", per_second / 1e6);
  return fmt::format("{:.2f}G", per_second / 1e9);
}

std::string format_plain_line(const StepReport& r, int64_t first_step) {
  return fmt::format(
      "step {}/{} | loss {:.4f} | lr {:.1e} | grad_norm {:.3f} | {} tok/s | MFU {:.1f}% | ETA {}",
      r.step, r.total_steps, r.loss, r.lr, r.grad_norm, format_rate(r.tokens_per_s), 100 * r.mfu,
      format_duration(eta_seconds(r, first_step)));
}

std::string format_bar_line(const StepReport& r, int64_t first_step, int bar_width) {
  double fraction =
      r.total_steps > 0 ? static_cast<double>(r.step) / static_cast<double>(r.total_steps) : 0;
  auto filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * bar_width);
  std::string total = std::to_string(r.total_steps);
  return fmt::format("[{}{}] {:>{}}/{} | loss {:.4f} | {} tok/s | ETA {}",
                     std::string(static_cast<size_t>(filled), '#'),
                     std::string(static_cast<size_t>(bar_width - filled), '.'), r.step,
                     total.size(), total, r.loss, format_rate(r.tokens_per_s),
                     format_duration(eta_seconds(r, first_step)));
}

ProgressDisplay::ProgressDisplay(std::ostream& out, ProgressStyle style, int64_t first_step)
    : out_(out), style_(style), first_step_(first_step) {}

ProgressDisplay::~ProgressDisplay() {
  try {
    finish();
  } catch (...) {
    // a destructor must not throw; the stream is gone or broken, nothing left to show
  }
}

void ProgressDisplay::update(const StepReport& report) {
  if (style_ == ProgressStyle::plain) {
    // Flushed per line: a batch log is a file, and a line buffered for an hour helps nobody.
    out_ << format_plain_line(report, first_step_) << std::endl;
    return;
  }
  std::string previous = std::move(bar_);
  bar_ = format_bar_line(report, first_step_);
  // Spaces over whatever the previous, longer bar left on screen.
  size_t stale = previous.size() > bar_.size() ? previous.size() - bar_.size() : 0;
  out_ << '\r' << bar_ << std::string(stale, ' ') << std::flush;
}

void ProgressDisplay::message(std::string_view line) {
  if (bar_.empty()) {
    out_ << line << std::endl;
    return;
  }
  out_ << '\r' << std::string(bar_.size(), ' ') << '\r' << line << '\n';
  draw_bar();
}

void ProgressDisplay::finish() {
  if (bar_.empty()) return;
  out_ << '\n' << std::flush;
  bar_.clear();
}

void ProgressDisplay::draw_bar() { out_ << '\r' << bar_ << std::flush; }

}  // namespace tessera
