#include "io/metrics/fraction_progress.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>

namespace tessera {

FractionProgress::FractionProgress(std::ostream& out, ProgressStyle style, std::string label)
    : out_(out),
      style_(style),
      label_(std::move(label)),
      start_(std::chrono::steady_clock::now()),
      last_line_(start_) {}

FractionProgress::~FractionProgress() { finish(); }

void FractionProgress::show(double fraction, std::string_view facts) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double eta = fraction > 0 ? seconds * (1 - fraction) / fraction : -1;
  const std::string tail =
      fmt::format("{}{}ETA {}", facts, facts.empty() ? "" : " | ", format_duration(eta));
  constexpr int kWidth = 20;
  if (style_ == ProgressStyle::bar) {
    const auto filled = static_cast<std::size_t>(fraction * kWidth);
    out_ << fmt::format("\r{} [{}{}] {:3.0f}% | {}", label_, std::string(filled, '#'),
                        std::string(kWidth - filled, '.'), 100 * fraction, tail)
         << std::flush;
    bar_shown_ = true;
  } else if (now - last_line_ >= std::chrono::seconds(10) || fraction >= 1.0) {
    out_ << fmt::format("{}: {:.0f}% | {}\n", label_, 100 * fraction, tail) << std::flush;
    last_line_ = now;
  }
}

void FractionProgress::finish() {
  if (bar_shown_) out_ << "\n" << std::flush;
  bar_shown_ = false;
}

double FractionProgress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace tessera
