// Wall-clock seconds between two points, for tokens/s and ETA.
#pragma once

#include <chrono>

namespace tessera {

class StepTimer {
 public:
  StepTimer() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void restart() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tessera
