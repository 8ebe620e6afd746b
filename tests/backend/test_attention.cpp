// Rotary embedding and causal attention: forward vs. the double reference, backward vs. finite
// differences (rotary_backward must be the transpose, hence the inverse, of rotary_forward).
#include <omp.h>

#include <tuple>
#include <utility>

#include "core/error.hpp"
#include "kernel_test_support.hpp"
#include "tests/support/attention_counts.hpp"

namespace tessera::test {
namespace {

using AttentionTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(AttentionTest);

std::size_t probs_count(const AttentionShape& s) {
  return static_cast<std::size_t>(s.batch) * s.n_heads * s.seq * s.seq;
}
testing::Message describe(const AttentionShape& s) {
  return testing::Message() << "batch=" << s.batch << " seq=" << s.seq << " heads=" << s.n_heads
                            << " head_dim=" << s.head_dim;
}

// ---- rotary --------------------------------------------------------------------------------

const AttentionShape kRotaryShapes[] = {{1, 1, 1, 2}, {2, 3, 2, 4}, {2, 13, 3, 8}, {1, 5, 1, 64}};
constexpr float kBase = 10000.0f;
// cos/sin rounded to fp32, two products and a sum per output.
constexpr Tolerance kRotary{1e-6, 8.0};

TEST_P(AttentionTest, RotaryForwardMatchesReference) {
  for (const AttentionShape& s : kRotaryShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = random_floats(qkv_count(s), 61);
    DeviceBuffer qkv(backend(), x);
    backend().rotary_forward(qkv.get(), s, kBase);
    expect_close(qkv.to_host(), reference::rotary(to_double(x), s, kBase), kRotary,
                 "rotary_forward");
  }
}

TEST_P(AttentionTest, RotaryForwardAtLargePositions) {
  // Positions up to 4095: angles of thousands of radians, where fp32 angle arithmetic would fail.
  const AttentionShape s{1, 4096, 1, 8};
  const std::vector<float> x = random_floats(qkv_count(s), 62);
  DeviceBuffer qkv(backend(), x);
  backend().rotary_forward(qkv.get(), s, kBase);
  expect_close(qkv.to_host(), reference::rotary(to_double(x), s, kBase), kRotary,
               "rotary_forward, long sequence");
}

TEST_P(AttentionTest, RotaryBackwardIsTheTransposeAndTheInverse) {
  for (const AttentionShape& s : kRotaryShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = random_floats(qkv_count(s), 63);
    const std::vector<float> w = random_floats(qkv_count(s), 64);
    const Vector fd =
        finite_difference_gradient([&](const Vector& v) { return reference::rotary(v, s, kBase); },
                                   to_double(x), to_double(w));
    DeviceBuffer d_qkv(backend(), w);
    backend().rotary_backward(d_qkv.get(), s, kBase);
    expect_close(d_qkv.to_host(), fd, kRotary, "rotary_backward vs FD");

    DeviceBuffer qkv(backend(), x);
    backend().rotary_forward(qkv.get(), s, kBase);
    backend().rotary_backward(qkv.get(), s, kBase);
    expect_close(qkv.to_host(), to_double(x), {2e-6, 8.0}, "rotary_backward(rotary_forward(x))");
  }
}

TEST_P(AttentionTest, RotaryFromAFirstPositionTurnsAsTheWholeSequenceDoes) {
  // Decoding turns rows [first, first + count) alone: they must turn as those rows of the whole
  // sequence [0, first + count) do.
  for (const auto& [first, count] : {std::pair{0, 3}, {5, 1}, {7, 6}, {4000, 2}}) {
    const AttentionShape whole{1, first + count, 3, 8};
    const std::vector<float> x = random_floats(qkv_count(whole), 66);
    const Vector expected = reference::rotary(to_double(x), whole, kBase);
    const std::size_t row = 3 * 3 * 8, begin = static_cast<std::size_t>(first) * row;
    DeviceBuffer part(backend(),
                      std::vector<float>(x.begin() + static_cast<std::ptrdiff_t>(begin), x.end()));
    backend().rotary_forward(part.get(), {1, count, 3, 8, first}, kBase);
    expect_close(part.to_host(),
                 Vector(expected.begin() + static_cast<std::ptrdiff_t>(begin), expected.end()),
                 kRotary, "rotary_forward from a first position");
  }
}

TEST_P(AttentionTest, RotaryRejectsOddHeadDim) {
  const AttentionShape s{1, 3, 1, 5};
  DeviceBuffer qkv(backend(), qkv_count(s));
  EXPECT_THROW(backend().rotary_forward(qkv.get(), s, kBase), InternalError);
}

// ---- attention -----------------------------------------------------------------------------

const AttentionShape kAttentionShapes[] = {
    {1, 1, 1, 1}, {1, 3, 2, 5}, {2, 13, 3, 4}, {2, 13, 1, 7}, {1, 40, 2, 8}};
// Scores are dot products of head_dim <= 8 terms, softmax in fp32, outputs sums of <= 40 terms.
constexpr Tolerance kForward{2e-6, 32.0};
constexpr Tolerance kGradient{2e-5, 64.0};

/// attention_forward at `s` on inputs drawn with `seed`: out and the probabilities against the
/// double-precision reference. Returns the probabilities.
std::vector<float> check_forward(Backend& backend, const AttentionShape& s, uint32_t seed,
                                 Tolerance tolerance) {
  const std::vector<float> x = random_floats(qkv_count(s), seed, -2.0f, 2.0f);
  const reference::AttentionResult ref = reference::attention(to_double(x), s);
  DeviceBuffer qkv(backend, x);
  DeviceBuffer out(backend, constant_floats(out_count(s), kGarbage));
  DeviceBuffer probs(backend, constant_floats(probs_count(s), kGarbage));
  backend.attention_forward(out.get(), probs.get(), qkv.get(), s);
  expect_close(out.to_host(), ref.out, tolerance, "attention out");
  std::vector<float> got_probs = probs.to_host();
  expect_close(got_probs, ref.probs, tolerance, "attention probs");
  return got_probs;
}

/// attention_backward's d_qkv at `s` (inputs drawn with seeds `seed` and `seed + 1`) against
/// finite differences of the reference.
void check_backward(Backend& backend, const AttentionShape& s, uint32_t seed, Tolerance tolerance) {
  const std::vector<float> x = random_floats(qkv_count(s), seed, -2.0f, 2.0f);
  const std::vector<float> w = random_floats(out_count(s), seed + 1);
  const Vector fd = finite_difference_gradient(
      [&](const Vector& v) { return reference::attention(v, s).out; }, to_double(x), to_double(w));
  DeviceBuffer qkv(backend, x), d_out(backend, w);
  DeviceBuffer out(backend, out_count(s)), probs(backend, probs_count(s));
  backend.attention_forward(out.get(), probs.get(), qkv.get(), s);
  DeviceBuffer d_qkv(backend, constant_floats(qkv_count(s), kGarbage));
  backend.attention_backward(d_qkv.get(), d_out.get(), qkv.get(), out.get(), probs.get(), s);
  expect_close(d_qkv.to_host(), fd, tolerance, "attention d_qkv");
}

TEST_P(AttentionTest, ForwardMatchesReference) {
  for (const AttentionShape& s : kAttentionShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> got_probs = check_forward(backend(), s, 65, kForward);
    for (std::size_t i = 0; i < got_probs.size(); ++i) {
      const std::size_t row = i / s.seq % s.seq, column = i % s.seq;
      if (column > row) {
        ASSERT_EQ(got_probs[i], 0.0f) << "probs above the diagonal at " << i;
      }
    }
  }
}

TEST_P(AttentionTest, CachedAttentionIsTheWholeSequencesRows) {
  // Rows [first, first + count) over a cache of the sequence's qkv rows: the rows of the
  // reference's causal attention over the whole sequence.
  for (const auto& [first, count, heads, head_dim] :
       {std::tuple{0, 1, 1, 4}, {0, 5, 2, 8}, {12, 1, 3, 16}, {30, 4, 2, 5}, {200, 1, 4, 64}}) {
    const AttentionShape whole{1, first + count, heads, head_dim};
    SCOPED_TRACE(describe(whole));
    const std::vector<float> x = random_floats(qkv_count(whole), 67, -2.0f, 2.0f);
    const Vector expected = reference::attention(to_double(x), whole).out;
    const std::size_t width = static_cast<std::size_t>(heads) * head_dim;
    DeviceBuffer cache(backend(), x);
    DeviceBuffer out(backend(), constant_floats(static_cast<std::size_t>(count) * width, kGarbage));
    backend().cached_attention_forward(out.get(), cache.get(), first, count, heads, head_dim);
    expect_close(
        out.to_host(),
        Vector(expected.begin() + static_cast<std::ptrdiff_t>(first * width), expected.end()),
        kForward, "cached_attention_forward");
  }
}

TEST_P(AttentionTest, BackwardMatchesFiniteDifferences) {
  for (const AttentionShape& s : kAttentionShapes) {
    SCOPED_TRACE(describe(s));
    check_backward(backend(), s, 66, kGradient);
  }
}

// Sequences longer than the CPU backend's query block (64): several causal blocks and a partial
// last one, so the blocks above the diagonal that the kernels skip are checked too.
const AttentionShape kLongShapes[] = {{1, 150, 2, 8}, {2, 64, 1, 4}, {1, 129, 1, 16}};
constexpr Tolerance kLongForward{5e-6, 64.0};

TEST_P(AttentionTest, ForwardMatchesReferenceAcrossBlocks) {
  for (const AttentionShape& s : kLongShapes) {
    SCOPED_TRACE(describe(s));
    check_forward(backend(), s, 68, kLongForward);
  }
}

TEST_P(AttentionTest, BackwardMatchesFiniteDifferencesAcrossBlocks) {
  check_backward(backend(), AttentionShape{1, 70, 1, 4}, 69, kGradient);
}

// head_dim 64 and 128, the GPT-2 and OpenLM head sizes, across query blocks and with sequences
// shorter than one; both ways the CPU backend schedules heads: one per thread (single-threaded
// GEMMs), and one after the other with the GEMMs on every thread.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads) : saved_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedThreads() { omp_set_num_threads(saved_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

const AttentionShape kHeadSizedShapes[] = {{2, 150, 2, 64}, {1, 5, 3, 64}, {2, 70, 1, 128}};
// Scores are dot products of 64 or 128 terms of inputs in [-2, 2].
constexpr Tolerance kHeadSizedForward{2e-5, 64.0};
constexpr Tolerance kHeadSizedGradient{1e-4, 64.0};

TEST_P(AttentionTest, HeadSizedForwardMatchesReferenceOneThreadPerHead) {
  const ScopedThreads one(1);  // as many heads as threads: each thread takes whole heads
  for (const AttentionShape& s : kHeadSizedShapes) {
    SCOPED_TRACE(describe(s));
    check_forward(backend(), s, 70, kHeadSizedForward);
  }
}

TEST_P(AttentionTest, HeadSizedForwardMatchesReferenceWithThreadsToSpare) {
  const ScopedThreads two(2);  // one head, two threads: the GEMMs get both
  check_forward(backend(), AttentionShape{1, 50, 1, 64}, 71, kHeadSizedForward);
}

TEST_P(AttentionTest, HeadSizedBackwardMatchesFiniteDifferencesOneThreadPerHead) {
  const ScopedThreads one(1);
  check_backward(backend(), AttentionShape{1, 29, 2, 64}, 72, kHeadSizedGradient);
  check_backward(backend(), AttentionShape{1, 7, 1, 128}, 73, kHeadSizedGradient);
}

TEST_P(AttentionTest, HeadSizedBackwardMatchesFiniteDifferencesWithThreadsToSpare) {
  const ScopedThreads two(2);
  check_backward(backend(), AttentionShape{1, 29, 1, 64}, 74, kHeadSizedGradient);
}

}  // namespace
}  // namespace tessera::test
