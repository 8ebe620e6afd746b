// Rotary embedding and causal attention over the packed qkv layout, forward and backward.
#include <cmath>
#include <tuple>

#include "conformance_support.hpp"
#include "core/error.hpp"
#include "tests/support/attention_counts.hpp"

namespace tessera::test {
namespace {

using AttentionConformance = DeviceConformance;

testing::Message describe(const AttentionShape& s) {
  return testing::Message() << "batch=" << s.batch << " seq=" << s.seq << " heads=" << s.n_heads
                            << " head_dim=" << s.head_dim;
}

constexpr float kBase = 10000.0f;
// cos / sin rounded to fp32 from double on both sides (the last bit may differ), then two
// products and a sum of values <= 1 (an FMA on the GPU).
constexpr Tolerance kRotary{8.0 * kFloatEps, 8.0};

TEST_F(AttentionConformance, RotaryForwardAndBackward) {
  const AttentionShape shapes[] = {{1, 1, 1, 2},  {2, 3, 2, 4},  {2, 13, 3, 8},
                                   {1, 5, 1, 64}, {3, 7, 4, 16}, {1, 4096, 1, 8}};
  for (const AttentionShape& s : shapes) {
    SCOPED_TRACE(describe(s));
    PairedBuffer qkv(random_floats(qkv_count(s), 71));
    for_each_backend([&](Backend& b) { b.rotary_forward(qkv.on(b), s, kBase); });
    expect_match(qkv, kRotary, "rotary_forward");
    PairedBuffer d_qkv(random_floats(qkv_count(s), 72));
    for_each_backend([&](Backend& b) { b.rotary_backward(d_qkv.on(b), s, kBase); });
    expect_match(d_qkv, kRotary, "rotary_backward");
  }
}

TEST_F(AttentionConformance, RotaryFromAFirstPosition) {
  for (const AttentionShape& s : {AttentionShape{1, 1, 2, 8, 5}, AttentionShape{1, 7, 3, 16, 4000},
                                  AttentionShape{2, 3, 1, 64, 17}}) {
    SCOPED_TRACE(describe(s) << " first_position=" << s.first_position);
    PairedBuffer qkv(random_floats(qkv_count(s), 77));
    for_each_backend([&](Backend& b) { b.rotary_forward(qkv.on(b), s, kBase); });
    expect_match(qkv, kRotary, "rotary_forward from a first position");
  }
}

TEST_F(AttentionConformance, RotaryRejectsOddHeadDim) {
  const AttentionShape s{1, 3, 1, 5};
  PairedBuffer qkv(qkv_count(s));
  EXPECT_THROW(device_backend().rotary_forward(qkv.on(device_backend()), s, kBase), InternalError);
}

// seq 1 (a single unmasked score), odd lengths, every head-dim bucket of the fused kernels (up to
// 32, 64, 128: tiles of 64, 64, 32 rows), one tile and several, the last one partial.
const AttentionShape kShapes[] = {{1, 1, 1, 4},     {1, 3, 2, 8},    {2, 13, 4, 16},
                                  {3, 13, 1, 8},    {2, 7, 3, 64},   {4, 64, 2, 32},
                                  {1, 33, 4, 17},   {2, 130, 3, 64}, {1, 257, 2, 32},
                                  {1, 100, 2, 128}, {2, 70, 1, 96}};

// The probabilities carry the scores' error (dot products of length head_dim scaled by
// 1/sqrt(head_dim); softmax is 1-Lipschitz in that sense) plus a sum of seq exponentials.
// out = P V: length-seq dot products with sum(P) = 1 and |V| <= 1, on top of the error of P.
Tolerance out_tolerance(const AttentionShape& s) {
  return reduction_tolerance(s.head_dim + 2 * s.seq, 1.0);
}
// Backward, each backend from its own forward pass: dP = dO V^T (length head_dim, |dP| <=
// head_dim), dS = P (dP - rowsum) / sqrt(hd)
// (|dS| <= ~2 sqrt(hd)), then dQ, dK, dV as length-seq products: errors of the first GEMM pass
// through the second, so n covers both lengths and m the size of dS.
Tolerance grad_tolerance(const AttentionShape& s) {
  return reduction_tolerance(s.head_dim + 2 * s.seq, 2.0 * std::sqrt(s.head_dim) + 2.0);
}

// Decoding's attention over a KV cache: `count` rows from position `first` over every cached
// key and value up to their own.
TEST_F(AttentionConformance, CachedAttention) {
  for (const auto& [first, count, heads, head_dim] : {std::tuple{0, 1, 1, 4},
                                                      {0, 9, 2, 64},
                                                      {12, 1, 3, 16},
                                                      {30, 4, 2, 5},
                                                      {700, 1, 4, 128},
                                                      {2047, 1, 2, 64}}) {
    const AttentionShape whole{1, first + count, heads, head_dim};
    SCOPED_TRACE(describe(whole) << " first=" << first);
    PairedBuffer cache(random_floats(qkv_count(whole), 78));
    const std::size_t width = static_cast<std::size_t>(heads) * head_dim;
    PairedBuffer out(random_floats(static_cast<std::size_t>(count) * width, 79));  // garbage
    for_each_backend([&](Backend& b) {
      b.cached_attention_forward(out.on(b), cache.on(b), first, count, heads, head_dim);
    });
    expect_match(out, out_tolerance(whole), "cached_attention_forward");
  }
}

TEST_F(AttentionConformance, ForwardOutput) {
  for (const AttentionShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    PairedBuffer qkv(random_floats(qkv_count(s), 73));
    PairedBuffer out(random_floats(out_count(s), 74));  // garbage, overwritten
    for_each_backend([&](Backend& b) {
      AttentionState state(b, s);
      b.attention_forward(out.on(b), state.get(), qkv.on(b), s);
    });
    expect_match(out, out_tolerance(s), "attention_forward out");
  }
}

TEST_F(AttentionConformance, BackwardFromEachBackendsOwnState) {
  for (const AttentionShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    PairedBuffer qkv(random_floats(qkv_count(s), 76)), out(out_count(s));
    PairedBuffer d_out(random_floats(out_count(s), 77));
    PairedBuffer d_qkv(random_floats(qkv_count(s), 78));  // garbage, overwritten
    for_each_backend([&](Backend& b) {
      AttentionState state(b, s);
      b.attention_forward(out.on(b), state.get(), qkv.on(b), s);
      b.attention_backward(d_qkv.on(b), d_out.on(b), qkv.on(b), out.on(b), state.get(), s);
    });
    expect_match(d_qkv, grad_tolerance(s), "attention_backward d_qkv");
  }
}

}  // namespace
}  // namespace tessera::test
