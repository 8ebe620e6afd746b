// The next token from a model's logits: greedy, or drawn from the softmax at a temperature,
// narrowed to the top-k most likely tokens and then to the nucleus (top-p: the smallest set of
// the most likely whose probability reaches p), as Hugging Face's generate() applies them.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace tessera {

struct SamplingOptions {
  double temperature = 1.0;  ///< 0: always the most likely token (greedy)
  int top_k = 0;             ///< 0: no limit
  double top_p = 1.0;        ///< in (0, 1]; 1: no limit
  uint64_t seed = 0;
};

/// UsageError naming the option and its range: temperature < 0 (or not finite), top_k < 0,
/// top_p outside (0, 1].
void check_sampling(const SamplingOptions& options);

class TokenSampler {
 public:
  explicit TokenSampler(const SamplingOptions& options);
  /// The next token given `logits` over the whole vocabulary. The same seed and logits give the
  /// same tokens on every machine (the generator is mt19937_64, its draws turned to [0, 1) here).
  int32_t next(std::span<const float> logits);

 private:
  double uniform();

  SamplingOptions options_;
  std::mt19937_64 generator_;
  std::vector<std::pair<double, int32_t>> candidates_;  // reused from draw to draw
};

}  // namespace tessera
