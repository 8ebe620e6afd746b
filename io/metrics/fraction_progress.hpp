// Console progress of work measured as a fraction done (prepare's input bytes, eval's
// microbatches): a redrawn bar with its ETA on a terminal, elsewhere (a Slurm batch log) a plain
// line every 10 s and at the end.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <string_view>

#include "io/metrics/progress.hpp"

namespace tessera {

class FractionProgress {
 public:
  /// `label` starts every line ("prepare", "eval tinyshakespeare").
  FractionProgress(std::ostream& out, ProgressStyle style, std::string label);
  ~FractionProgress();  ///< ends a visible bar's line
  FractionProgress(const FractionProgress&) = delete;
  FractionProgress& operator=(const FractionProgress&) = delete;

  /// `fraction` of the work is done; `facts` (e.g. "12.0/30.0 MB read") go on the line.
  void show(double fraction, std::string_view facts = {});
  /// Ends the bar's line so that later output starts on a fresh one.
  void finish();
  /// Since construction.
  double seconds() const;

 private:
  std::ostream& out_;
  ProgressStyle style_;
  std::string label_;
  std::chrono::steady_clock::time_point start_, last_line_;
  bool bar_shown_ = false;
};

}  // namespace tessera
