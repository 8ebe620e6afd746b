// Every kernel, run twice on the same inputs at shapes large enough to take the parallel paths,
// must give bitwise identical outputs (reproducible runs, comparable benchmarks).
#include <functional>

#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using DeterminismTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(DeterminismTest);

constexpr int kRows = 512, kDim = 96, kHidden = 384, kVocab = 2048;

/// Runs `kernel` twice, each time on fresh (zeroed) outputs, and compares what it returns.
void expect_deterministic(const std::function<std::vector<float>()>& kernel,
                          const std::string& what) {
  const std::vector<float> first = kernel();
  const std::vector<float> second = kernel();
  expect_bitwise_equal(first, second, what);
}

/// Concatenation of the buffers' contents.
std::vector<float> gather(std::initializer_list<const DeviceBuffer*> buffers) {
  std::vector<float> all;
  for (const DeviceBuffer* buffer : buffers) {
    const std::vector<float> host = buffer->to_host();
    all.insert(all.end(), host.begin(), host.end());
  }
  return all;
}

TEST_P(DeterminismTest, ElementwiseAndEmbedding) {
  Backend& b = backend();
  const std::size_t count = static_cast<std::size_t>(kRows) * kDim;
  DeviceBuffer x(b, random_floats(count, 91)), y(b, random_floats(count, 92));
  TokenBuffer tokens(b, random_tokens(kRows, 93, 0, 50));
  EXPECT_EQ(b.sum_of_squares(x.get(), count), b.sum_of_squares(x.get(), count)) << "sum_of_squares";
  expect_deterministic(
      [&] {
        DeviceBuffer sum(b, count), accumulated(b, count), scaled(b, count);
        b.add(sum.get(), x.get(), y.get(), count);
        b.accumulate(accumulated.get(), x.get(), count);
        b.copy_from_host(scaled.get(), x.to_host().data(), count);
        b.scale(scaled.get(), 0.3f, count);
        return gather({&sum, &accumulated, &scaled});
      },
      "add, accumulate, scale");
  expect_deterministic(
      [&] {
        DeviceBuffer out(b, count), d_table(b, 50 * kDim), d_positions(b, 64 * kDim);
        b.embedding_forward(out.get(), tokens.get(), y.get(), kRows, kDim, 0, 50);
        b.position_forward(out.get(), y.get(), kRows, 64, kDim);
        b.embedding_backward(d_table.get(), tokens.get(), y.get(), kRows, kDim, 0, 50);
        b.position_backward(d_positions.get(), y.get(), kRows, 64, kDim);
        return gather({&out, &d_table, &d_positions});
      },
      "embedding and positions");
}

TEST_P(DeterminismTest, NormalizationAndLinear) {
  Backend& b = backend();
  const std::size_t count = static_cast<std::size_t>(kRows) * kDim;
  DeviceBuffer in(b, random_floats(count, 94)), gain(b, random_floats(kDim, 95));
  DeviceBuffer bias(b, random_floats(kDim, 96)), d_out(b, random_floats(count, 97));
  DeviceBuffer weight(b, random_floats(static_cast<std::size_t>(kHidden) * kDim, 98));
  DeviceBuffer d_hidden(b, random_floats(static_cast<std::size_t>(kRows) * kHidden, 99));
  DeviceBuffer hidden_bias(b, random_floats(kHidden, 100));
  expect_deterministic(
      [&] {
        DeviceBuffer out(b, count), mean(b, kRows), rstd(b, kRows), d_in(b, count);
        DeviceBuffer d_gain(b, kDim), d_bias(b, kDim);
        b.layernorm_forward(out.get(), mean.get(), rstd.get(), in.get(), gain.get(), bias.get(),
                            kRows, kDim, 1e-5f);
        b.layernorm_backward(d_in.get(), d_gain.get(), d_bias.get(), d_out.get(), in.get(),
                             gain.get(), mean.get(), rstd.get(), kRows, kDim);
        b.rmsnorm_forward(out.get(), rstd.get(), in.get(), gain.get(), kRows, kDim, 1e-5f);
        b.rmsnorm_backward(d_in.get(), d_gain.get(), d_out.get(), in.get(), gain.get(), rstd.get(),
                           kRows, kDim);
        return gather({&out, &mean, &rstd, &d_in, &d_gain, &d_bias});
      },
      "layernorm, rmsnorm");
  expect_deterministic(
      [&] {
        DeviceBuffer out(b, static_cast<std::size_t>(kRows) * kHidden), d_in(b, count);
        DeviceBuffer d_weight(b, static_cast<std::size_t>(kHidden) * kDim), d_bias(b, kHidden);
        b.linear_forward(out.get(), in.get(), weight.get(), hidden_bias.get(), kRows, kDim,
                         kHidden);
        b.linear_backward(d_in.get(), d_weight.get(), d_bias.get(), d_hidden.get(), in.get(),
                          weight.get(), kRows, kDim, kHidden);
        return gather({&out, &d_in, &d_weight, &d_bias});
      },
      "linear");
}

TEST_P(DeterminismTest, ActivationsLossAndOptimizer) {
  Backend& b = backend();
  const std::size_t count = static_cast<std::size_t>(kRows) * kHidden;
  DeviceBuffer x(b, random_floats(count, 100, -4.0f, 4.0f)), y(b, random_floats(count, 101));
  DeviceBuffer logits(b, random_floats(static_cast<std::size_t>(kRows) * kVocab, 102));
  TokenBuffer targets(b, random_tokens(kRows, 103, 0, kVocab));
  expect_deterministic(
      [&] {
        DeviceBuffer out(b, count), d_x(b, count), d_y(b, count);
        b.gelu_forward(out.get(), x.get(), count);
        b.gelu_backward(d_x.get(), y.get(), x.get(), count);
        b.swiglu_forward(out.get(), x.get(), y.get(), count);
        b.swiglu_backward(d_x.get(), d_y.get(), y.get(), x.get(), y.get(), count);
        return gather({&out, &d_x, &d_y});
      },
      "gelu, swiglu");
  expect_deterministic(
      [&] {
        DeviceBuffer losses(b, kRows), d_logits(b, static_cast<std::size_t>(kRows) * kVocab);
        b.softmax_cross_entropy(losses.get(), d_logits.get(), logits.get(), targets.get(), kRows,
                                kVocab, 1e-4f, 0.5f);
        return gather({&losses, &d_logits});
      },
      "softmax_cross_entropy");
  expect_deterministic(
      [&] {
        DeviceBuffer param(b, x.to_host()), m(b, count), v(b, count);
        for (int step = 1; step <= 2; ++step) {
          b.adamw_update(param.get(), y.get(), m.get(), v.get(), {{0, count, 0.1f}},
                         {1e-3f, 0.9f, 0.95f, 1e-8f, step, 0.5f});
        }
        return gather({&param, &m, &v});
      },
      "adamw_update");
}

TEST_P(DeterminismTest, RotaryAndAttention) {
  Backend& b = backend();
  const AttentionShape s{2, 128, 6, 64};
  const std::size_t qkv = static_cast<std::size_t>(s.batch) * s.seq * 3 * s.n_heads * s.head_dim;
  const std::size_t out = qkv / 3,
                    probs = static_cast<std::size_t>(s.batch) * s.n_heads * s.seq * s.seq;
  const std::vector<float> x = random_floats(qkv, 104);
  DeviceBuffer d_out(b, random_floats(out, 105));
  expect_deterministic(
      [&] {
        DeviceBuffer q(b, x), o(b, out), p(b, probs), d_qkv(b, qkv);
        b.rotary_forward(q.get(), s, 10000.0f);
        b.attention_forward(o.get(), p.get(), q.get(), s);
        b.attention_backward(d_qkv.get(), d_out.get(), q.get(), o.get(), p.get(), s);
        b.rotary_backward(d_qkv.get(), s, 10000.0f);
        return gather({&q, &o, &p, &d_qkv});
      },
      "rotary, attention");
}

}  // namespace
}  // namespace tessera::test
