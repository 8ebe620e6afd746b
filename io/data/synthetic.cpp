#include "io/data/synthetic.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/philox.hpp"

namespace tessera {
namespace {

constexpr uint64_t kConstructionStream = uint64_t{1} << 63;

uint64_t sample_stream(Split split, int64_t sample) {
  return static_cast<uint64_t>(sample) << 1 | (split == Split::validation ? 1u : 0u);
}

double entropy(std::span<const double> p) {
  double h = 0.0;
  for (double x : p) {
    if (x > 0.0) h -= x * std::log(x);
  }
  return h;
}

// Cumulative sums with the last entry forced to exactly 1, so a uniform in (0, 1) always lands.
void append_cumulative(std::span<const double> p, std::vector<double>& out) {
  double sum = 0.0;
  for (double x : p) out.push_back(sum += x);
  out.back() = 1.0;
}

}  // namespace

MarkovSource::MarkovSource(const MarkovSourceOptions& options)
    : n_states_(options.n_states), seed_(options.seed) {
  if (options.n_states < 2) {
    throw UsageError("the synthetic source needs at least 2 states, got " +
                     std::to_string(options.n_states) + "; raise model.vocab_size");
  }
  if (options.min_successors < 1 || options.max_successors < options.min_successors) {
    throw UsageError("synthetic successor range [" + std::to_string(options.min_successors) + ", " +
                     std::to_string(options.max_successors) + "] is empty; use 1 <= min <= max");
  }
  build_transitions(std::min(options.min_successors, n_states_),
                    std::min(options.max_successors, n_states_));
  compute_stationary();
  compute_entropies();
}

void MarkovSource::build_transitions(int min_successors, int max_successors) {
  row_begin_.assign(1, 0);
  std::vector<double> weights;
  for (int state = 0; state < n_states_; ++state) {
    const uint64_t stream = kConstructionStream | static_cast<uint64_t>(state);
    uint64_t draw = 0;
    const auto span = static_cast<uint32_t>(max_successors - min_successors + 1);
    const int degree = min_successors + static_cast<int>(philox_bits(seed_, stream, draw++) % span);
    const auto first = static_cast<int64_t>(successors_.size());
    successors_.push_back((state + 1) % n_states_);
    while (static_cast<int>(successors_.size() - first) < degree) {
      const auto candidate = static_cast<int32_t>(philox_bits(seed_, stream, draw++) %
                                                  static_cast<uint32_t>(n_states_));
      if (std::find(successors_.begin() + first, successors_.end(), candidate) ==
          successors_.end()) {
        successors_.push_back(candidate);
      }
    }
    weights.clear();
    double total = 0.0;
    for (int i = 0; i < degree; ++i) {
      weights.push_back(-std::log(bits_to_open_uniform(philox_bits(seed_, stream, draw++))));
      total += weights.back();
    }
    for (double w : weights) probabilities_.push_back(w / total);
    append_cumulative(std::span(probabilities_).subspan(static_cast<size_t>(first)), cumulative_);
    row_begin_.push_back(static_cast<int64_t>(successors_.size()));
  }
}

void MarkovSource::compute_stationary() {
  const auto n = static_cast<size_t>(n_states_);
  std::vector<double> pi(n, 1.0 / static_cast<double>(n)), next(n);
  constexpr int kMaxIterations = 1'000'000;
  double change = 1.0;
  for (int iteration = 0; iteration < kMaxIterations && change > 1e-15; ++iteration) {
    // Lazy chain: next = (pi + pi P) / 2.
    for (size_t s = 0; s < n; ++s) next[s] = 0.5 * pi[s];
    for (size_t s = 0; s < n; ++s) {
      for (int64_t e = row_begin_[s]; e < row_begin_[s + 1]; ++e) {
        next[static_cast<size_t>(successors_[e])] += 0.5 * pi[s] * probabilities_[e];
      }
    }
    double total = 0.0;
    for (double x : next) total += x;
    change = 0.0;
    for (size_t s = 0; s < n; ++s) {
      next[s] /= total;
      change += std::abs(next[s] - pi[s]);
    }
    pi.swap(next);
  }
  TESSERA_CHECK(change <= 1e-15, "stationary distribution did not converge");
  stationary_ = std::move(pi);
  stationary_cumulative_.clear();
  append_cumulative(stationary_, stationary_cumulative_);
}

void MarkovSource::compute_entropies() {
  entropy_rate_ = 0.0;
  for (int s = 0; s < n_states_; ++s) entropy_rate_ += stationary_[s] * entropy(probabilities(s));
  stationary_entropy_ = entropy(stationary_);
}

std::span<const int32_t> MarkovSource::successors(int state) const {
  const auto begin = static_cast<size_t>(row_begin_[state]);
  return std::span(successors_).subspan(begin, static_cast<size_t>(row_begin_[state + 1]) - begin);
}

std::span<const double> MarkovSource::probabilities(int state) const {
  const auto begin = static_cast<size_t>(row_begin_[state]);
  return std::span(probabilities_)
      .subspan(begin, static_cast<size_t>(row_begin_[state + 1]) - begin);
}

double MarkovSource::expected_loss_floor(int seq_len) const {
  TESSERA_CHECK(seq_len >= 1, std::to_string(seq_len));
  return entropy_rate_;
}

int MarkovSource::next_state(int state, uint32_t bits) const {
  const double u = bits_to_open_uniform(bits);
  int64_t e = row_begin_[state];
  while (cumulative_[e] < u) ++e;  // rows are short (<= max_successors): a linear scan wins
  return successors_[e];
}

template <typename Emit>
void MarkovSource::walk(Split split, int64_t sample, int64_t length, Emit emit) const {
  TESSERA_CHECK(sample >= 0 && length >= 1, std::to_string(sample));
  // Token j uses Philox word j of the sample's stream: word j % 4 of block j / 4.
  const uint64_t stream = sample_stream(split, sample);
  PhiloxCounter block = philox_block(seed_, stream, 0);
  const double u0 = bits_to_open_uniform(block[0]);
  int state = static_cast<int>(
      std::lower_bound(stationary_cumulative_.begin(), stationary_cumulative_.end(), u0) -
      stationary_cumulative_.begin());
  emit(0, state);
  for (int64_t j = 1; j < length; ++j) {
    if (j % 4 == 0) block = philox_block(seed_, stream, static_cast<uint64_t>(j) / 4);
    state = next_state(state, block[j % 4]);
    emit(j, state);
  }
}

void MarkovSource::generate(Split split, int64_t sample, int64_t length, int32_t* tokens) const {
  walk(split, sample, length, [tokens](int64_t j, int state) { tokens[j] = state; });
}

void MarkovSource::generate_window(Split split, int64_t sample, int seq_len, int32_t* inputs,
                                   int32_t* targets) const {
  walk(split, sample, int64_t{seq_len} + 1, [=](int64_t j, int state) {
    if (j < seq_len) inputs[j] = state;
    if (j > 0) targets[j - 1] = state;
  });
}

}  // namespace tessera
