// The built-in synthetic source: a seeded first-order Markov chain over n_states tokens whose
// entropy rate, and hence the best loss any model can reach on it, is known exactly.
//
// Construction, all drawn from `seed` with Philox: state s has k_s successors, k_s uniform in
// [min_successors, max_successors]; one of them is always (s + 1) mod n_states, so the chain is
// irreducible, the others are distinct random states. The transition probabilities of a row are
// Dirichlet(1, ..., 1) (normalised Exp(1) draws). The stationary distribution pi solves
// pi = pi P; it is found by power iteration on the lazy chain (P + I) / 2, which has the same pi
// and converges for every irreducible chain.
//
// Entropy rate, in nats:  H = sum_s pi(s) H(P(s, .)),  H(p) = -sum_t p_t log p_t.
//
// Sample n of a split is a sequence x_0 .. x_{L-1} with x_0 ~ pi and x_{j+1} ~ P(x_j, .); the
// random number for x_j is Philox word j of stream 2n + split under `seed` (construction uses
// streams with the top bit set), so a sample depends only on (seed, split, n).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/data/split.hpp"

namespace tessera {

struct MarkovSourceOptions {
  int n_states = 256;
  int min_successors = 4;
  int max_successors = 16;
  uint64_t seed = 1234;
};

class MarkovSource {
 public:
  /// Builds the chain. UsageError when n_states < 2 or the successor range is empty.
  explicit MarkovSource(const MarkovSourceOptions& options);

  int n_states() const { return n_states_; }
  uint64_t seed() const { return seed_; }
  /// Successors of `state` and their probabilities (same order; probabilities sum to 1).
  std::span<const int32_t> successors(int state) const;
  std::span<const double> probabilities(int state) const;
  std::span<const double> stationary() const { return stationary_; }

  /// H = sum_s pi(s) H(P(s, .)) in nats per token.
  double entropy_rate() const { return entropy_rate_; }
  /// H(pi) in nats: the loss of the best model that ignores context (a unigram model).
  double stationary_entropy() const { return stationary_entropy_; }
  /// Best achievable mean cross-entropy (nats) of predicting x_{t+1} from x_0..x_t over the
  /// seq_len targets of a window. Each target x_{t+1} with t >= 0 has x_t in its context and,
  /// the chain being first-order and started from pi, H(x_{t+1} | x_0..x_t) = H(x_{t+1} | x_t)
  /// = H exactly: the floor is the entropy rate for every seq_len >= 1.
  double expected_loss_floor(int seq_len) const;

  /// Writes the first `length` tokens of sample `sample` of `split`.
  void generate(Split split, int64_t sample, int64_t length, int32_t* tokens) const;
  /// Writes one training window: inputs = x_0..x_{L-1}, targets = x_1..x_L, L = seq_len.
  void generate_window(Split split, int64_t sample, int seq_len, int32_t* inputs,
                       int32_t* targets) const;

 private:
  template <typename Emit>
  void walk(Split split, int64_t sample, int64_t length, Emit emit) const;
  int next_state(int state, uint32_t bits) const;
  void build_transitions(int min_successors, int max_successors);
  void compute_stationary();
  void compute_entropies();

  int n_states_;
  uint64_t seed_;
  std::vector<int64_t> row_begin_;  ///< CSR: row s is [row_begin_[s], row_begin_[s + 1])
  std::vector<int32_t> successors_;
  std::vector<double> probabilities_;
  std::vector<double> cumulative_;  ///< per row, last entry exactly 1
  std::vector<double> stationary_;
  std::vector<double> stationary_cumulative_;
  double entropy_rate_ = 0.0;
  double stationary_entropy_ = 0.0;
};

}  // namespace tessera
