// Timing backend work without a synchronisation call on the seam: a one-float copy to the host
// waits for everything queued before it on every backend.
#pragma once

#include <chrono>

#include "backend/backend.hpp"

namespace tessera::calibration {

/// Waits until `backend` has finished the work queued so far (a copy to the host of one float
/// of `any_buffer`, which every backend orders after its earlier work).
inline void finish(Backend& backend, const float* any_buffer) {
  float sink = 0.0f;
  backend.copy_to_host(&sink, any_buffer, 1);
}

/// Seconds per call of `work`: one warm-up call, then repetitions doubled until one timed batch
/// lasts `min_seconds`; the batch's mean.
template <class Work>
double seconds_per_call(Backend& backend, const float* any_buffer, double min_seconds,
                        Work&& work) {
  work();
  finish(backend, any_buffer);
  for (int repeats = 1;; repeats *= 2) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) work();
    finish(backend, any_buffer);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds >= min_seconds || repeats >= (1 << 16)) return seconds / repeats;
  }
}

}  // namespace tessera::calibration
