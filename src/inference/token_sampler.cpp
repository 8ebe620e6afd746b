#include "inference/token_sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace tessera {

void check_sampling(const SamplingOptions& options) {
  if (!(options.temperature >= 0.0) || !std::isfinite(options.temperature)) {
    throw UsageError(
        fmt::format("--temperature {} is not a number >= 0; use 0 for greedy decoding or e.g. 0.8",
                    options.temperature));
  }
  if (options.top_k < 0) {
    throw UsageError(
        fmt::format("--top-k {} is negative; use 0 for no limit or e.g. 50", options.top_k));
  }
  if (!(options.top_p > 0.0 && options.top_p <= 1.0)) {
    throw UsageError(
        fmt::format("--top-p {} is outside (0, 1]; use 1 for no limit or e.g. 0.9", options.top_p));
  }
}

TokenSampler::TokenSampler(const SamplingOptions& options)
    : options_(options), generator_(options.seed) {
  check_sampling(options);
}

double TokenSampler::uniform() {
  // The top 53 bits as a fraction: the same on every standard library (unlike
  // std::uniform_real_distribution, whose algorithm is left to the implementation).
  return static_cast<double>(generator_() >> 11) * 0x1.0p-53;
}

int32_t TokenSampler::next(std::span<const float> logits) {
  TESSERA_CHECK(!logits.empty(), "sampling from no logits");
  const auto most_likely =
      static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if (options_.temperature == 0.0 || options_.top_k == 1) return most_likely;
  // Probabilities at the temperature, relative to the largest logit (which gets 1).
  const double top = logits[static_cast<std::size_t>(most_likely)];
  candidates_.clear();
  for (std::size_t i = 0; i < logits.size(); ++i) {
    candidates_.emplace_back(std::exp((logits[i] - top) / options_.temperature),
                             static_cast<int32_t>(i));
  }
  // Most likely first; equal probabilities by token id, so the order is fully determined.
  const auto more_likely = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  std::size_t kept = candidates_.size();
  if (options_.top_k > 0 && static_cast<std::size_t>(options_.top_k) < kept) {
    kept = static_cast<std::size_t>(options_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(kept),
                      candidates_.end(), more_likely);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), more_likely);
  }
  double total = 0.0;
  for (std::size_t i = 0; i < kept; ++i) total += candidates_[i].first;
  if (options_.top_p < 1.0) {
    // The smallest prefix whose probability reaches top_p (at least one token).
    double reached = 0.0;
    std::size_t nucleus = 0;
    while (nucleus < kept && reached < options_.top_p * total)
      reached += candidates_[nucleus++].first;
    kept = std::max<std::size_t>(nucleus, 1);
    total = reached > 0.0 ? reached : candidates_[0].first;
  }
  const double target = uniform() * total;
  double cumulative = 0.0;
  for (std::size_t i = 0; i < kept; ++i) {
    cumulative += candidates_[i].first;
    if (target < cumulative) return candidates_[i].second;
  }
  return candidates_[kept - 1].second;  // rounding left the target at the very end
}

}  // namespace tessera
