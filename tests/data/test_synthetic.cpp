#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "io/data/synthetic.hpp"

namespace tessera {
namespace {

const MarkovSource& default_source() {
  static const MarkovSource source(MarkovSourceOptions{});
  return source;
}

TEST(MarkovSource, RowsAreDistributionsOverDistinctSuccessors) {
  const MarkovSource& source = default_source();
  ASSERT_EQ(source.n_states(), 256);
  for (int s = 0; s < source.n_states(); ++s) {
    const auto next = source.successors(s);
    const auto p = source.probabilities(s);
    ASSERT_EQ(next.size(), p.size());
    EXPECT_GE(next.size(), 4u);
    EXPECT_LE(next.size(), 16u);
    EXPECT_EQ(next[0], (s + 1) % 256) << "the ring edge keeps the chain irreducible";
    double sum = 0.0;
    for (size_t i = 0; i < next.size(); ++i) {
      EXPECT_TRUE(next[i] >= 0 && next[i] < 256);
      for (size_t j = 0; j < i; ++j) EXPECT_NE(next[i], next[j]);
      EXPECT_GT(p[i], 0.0);
      sum += p[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
}

TEST(MarkovSource, StationaryDistributionSumsToOneAndIsStationary) {
  const MarkovSource& source = default_source();
  const auto pi = source.stationary();
  double sum = 0.0;
  for (double x : pi) {
    EXPECT_GT(x, 0.0);
    sum += x;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  std::vector<double> next(pi.size(), 0.0);  // pi P
  for (int s = 0; s < source.n_states(); ++s) {
    const auto successors = source.successors(s);
    const auto p = source.probabilities(s);
    for (size_t i = 0; i < successors.size(); ++i) next[successors[i]] += pi[s] * p[i];
  }
  for (size_t s = 0; s < pi.size(); ++s) EXPECT_NEAR(next[s], pi[s], 1e-13) << "state " << s;
}

TEST(MarkovSource, EntropyRateMatchesALongSample) {
  const MarkovSource& source = default_source();
  const int64_t length = 4'000'000;
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  source.generate(Split::train, 0, length, tokens.data());

  // Plug-in estimates from counts alone, independent of the chain's tables.
  std::vector<double> unigram(256, 0.0), pair(256 * 256, 0.0);
  for (int64_t t = 0; t + 1 < length; ++t) {
    unigram[tokens[t]] += 1.0;
    pair[tokens[t] * 256 + tokens[t + 1]] += 1.0;
  }
  const double n = static_cast<double>(length - 1);
  double conditional = 0.0, marginal = 0.0;
  for (int a = 0; a < 256; ++a) {
    if (unigram[a] > 0) marginal -= unigram[a] / n * std::log(unigram[a] / n);
    for (int b = 0; b < 256; ++b) {
      const double c = pair[a * 256 + b];
      if (c > 0) conditional -= c / n * std::log(c / unigram[a]);
    }
  }
  EXPECT_NEAR(conditional, source.entropy_rate(), 0.02 * source.entropy_rate());
  EXPECT_NEAR(marginal, source.stationary_entropy(), 0.02 * source.stationary_entropy());
  std::cout << "[ synthetic ] entropy rate " << source.entropy_rate() << " nats (empirical "
            << conditional << "), unigram " << source.stationary_entropy() << " nats (empirical "
            << marginal << ")\n";
}

TEST(MarkovSource, LossFloorIsTheEntropyRate) {
  const MarkovSource& source = default_source();
  EXPECT_DOUBLE_EQ(source.expected_loss_floor(1), source.entropy_rate());
  EXPECT_DOUBLE_EQ(source.expected_loss_floor(64), source.entropy_rate());
  EXPECT_GT(source.entropy_rate(), 0.5);
  EXPECT_LT(source.entropy_rate(), source.stationary_entropy());
  EXPECT_LT(source.stationary_entropy(), std::log(256.0));
}

TEST(MarkovSource, FirstTokenFollowsTheStationaryDistribution) {
  const MarkovSource& source = default_source();
  const int samples = 100000;
  std::vector<double> counts(256, 0.0);
  for (int n = 0; n < samples; ++n) {
    int32_t token;
    source.generate(Split::validation, n, 1, &token);
    counts[token] += 1.0;
  }
  double total_variation = 0.0;
  for (int s = 0; s < 256; ++s)
    total_variation += std::abs(counts[s] / samples - source.stationary()[s]);
  EXPECT_LT(total_variation / 2, 0.04);
}

std::vector<int32_t> sample(const MarkovSource& source, Split split, int64_t n, int64_t length) {
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  source.generate(split, n, length, tokens.data());
  return tokens;
}

TEST(MarkovSource, SamplesDependOnlyOnSeedSplitAndNumber) {
  const MarkovSource& source = default_source();
  const MarkovSource same(MarkovSourceOptions{});
  MarkovSourceOptions other_options;
  other_options.seed = 99;
  const MarkovSource other_seed(other_options);

  EXPECT_EQ(sample(source, Split::train, 17, 65), sample(same, Split::train, 17, 65));
  EXPECT_NE(sample(source, Split::train, 17, 65), sample(source, Split::train, 18, 65));
  EXPECT_NE(sample(source, Split::train, 17, 65), sample(source, Split::validation, 17, 65));
  EXPECT_NE(sample(source, Split::train, 17, 65), sample(other_seed, Split::train, 17, 65));

  const auto long_sample = sample(source, Split::train, 3, 100);
  const auto prefix = sample(source, Split::train, 3, 10);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), long_sample.begin()));
}

TEST(MarkovSource, WindowIsTheSampleShiftedByOne) {
  const MarkovSource& source = default_source();
  const int seq_len = 13;
  std::vector<int32_t> inputs(seq_len), targets(seq_len);
  source.generate_window(Split::validation, 5, seq_len, inputs.data(), targets.data());
  const auto tokens = sample(source, Split::validation, 5, seq_len + 1);
  EXPECT_TRUE(std::equal(inputs.begin(), inputs.end(), tokens.begin()));
  EXPECT_TRUE(std::equal(targets.begin(), targets.end(), tokens.begin() + 1));
}

TEST(MarkovSource, SmallVocabularies) {
  for (int states : {2, 3, 5, 16}) {
    MarkovSourceOptions options;
    options.n_states = states;
    const MarkovSource source(options);
    double sum = 0.0;
    for (double x : source.stationary()) sum += x;
    EXPECT_NEAR(sum, 1.0, 1e-12);
    for (int32_t t : sample(source, Split::train, 0, 200)) EXPECT_TRUE(t >= 0 && t < states);
  }
}

}  // namespace
}  // namespace tessera
