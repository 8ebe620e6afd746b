// Token embedding (with vocab-parallel shards) and learned positions: forward vs. the double
// reference, backward vs. finite differences, accumulate/overwrite semantics, determinism.
#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using EmbeddingTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(EmbeddingTest);

struct EmbeddingShape {
  int rows, dim, vocab;
};
const EmbeddingShape kShapes[] = {{1, 5, 3}, {7, 17, 11}, {33, 64, 50}, {64, 130, 7}};

// A lookup is a copy and the backward a sum of at most `rows` terms: a few roundings.
constexpr Tolerance kExact{0.0, 0.0};
constexpr Tolerance kSum{1e-6, 8.0};

TEST_P(EmbeddingTest, ForwardMatchesReferenceAndOverwrites) {
  for (const EmbeddingShape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "rows=" << s.rows << " dim=" << s.dim);
    const std::vector<int32_t> tokens = random_tokens(s.rows, 11, 0, s.vocab);
    const std::vector<float> table = random_floats(static_cast<std::size_t>(s.vocab) * s.dim, 12);
    TokenBuffer dtokens(backend(), tokens);
    DeviceBuffer dtable(backend(), table);
    DeviceBuffer out(backend(),
                     constant_floats(static_cast<std::size_t>(s.rows) * s.dim, kGarbage));
    backend().embedding_forward(out.get(), dtokens.get(), dtable.get(), s.rows, s.dim, 0, s.vocab);
    expect_close(out.to_host(), reference::embedding(tokens, to_double(table), s.dim, 0, s.vocab),
                 kExact, "embedding_forward");
  }
}

TEST_P(EmbeddingTest, TwoVocabShardsSumToTheFullLookup) {
  const int rows = 33, dim = 17, vocab = 50, split = 21;
  const std::vector<int32_t> tokens = random_tokens(rows, 13, 0, vocab);
  const std::vector<float> table = random_floats(static_cast<std::size_t>(vocab) * dim, 14);
  const std::vector<float> low(table.begin(), table.begin() + split * dim);
  const std::vector<float> high(table.begin() + split * dim, table.end());
  TokenBuffer dtokens(backend(), tokens);
  DeviceBuffer dlow(backend(), low), dhigh(backend(), high);
  DeviceBuffer out_low(backend(), constant_floats(rows * dim, kGarbage));
  DeviceBuffer out_high(backend(), constant_floats(rows * dim, kGarbage));
  backend().embedding_forward(out_low.get(), dtokens.get(), dlow.get(), rows, dim, 0, split);
  backend().embedding_forward(out_high.get(), dtokens.get(), dhigh.get(), rows, dim, split,
                              vocab - split);
  backend().add(out_low.get(), out_low.get(), out_high.get(), rows * dim);
  expect_close(out_low.to_host(), reference::embedding(tokens, to_double(table), dim, 0, vocab),
               kExact, "shard sum");
}

TEST_P(EmbeddingTest, BackwardMatchesFiniteDifferencesAndAccumulates) {
  for (const EmbeddingShape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "rows=" << s.rows << " dim=" << s.dim);
    const int vocab_begin = 2, vocab_local = s.vocab - 1;  // a shard: some tokens are foreign
    const std::vector<int32_t> tokens = random_tokens(s.rows, 15, 0, s.vocab + 2);
    const std::vector<float> table =
        random_floats(static_cast<std::size_t>(vocab_local) * s.dim, 16);
    const std::vector<float> d_out = random_floats(static_cast<std::size_t>(s.rows) * s.dim, 17);
    const Vector fd = finite_difference_gradient(
        [&](const Vector& t) {
          return reference::embedding(tokens, t, s.dim, vocab_begin, vocab_local);
        },
        to_double(table), to_double(d_out));
    TokenBuffer dtokens(backend(), tokens);
    DeviceBuffer dd_out(backend(), d_out);
    DeviceBuffer d_table(backend(), table.size());
    backend().embedding_backward(d_table.get(), dtokens.get(), dd_out.get(), s.rows, s.dim,
                                 vocab_begin, vocab_local);
    expect_close(d_table.to_host(), fd, kSum, "embedding_backward vs FD");
    backend().embedding_backward(d_table.get(), dtokens.get(), dd_out.get(), s.rows, s.dim,
                                 vocab_begin, vocab_local);
    expect_close(d_table.to_host(), scaled(fd, 2.0), twice(kSum), "embedding_backward accumulates");
  }
}

TEST_P(EmbeddingTest, PositionsForwardAddsAndBackwardMatchesFiniteDifferences) {
  for (const int seq : {1, 3, 13}) {
    const int batch = 3, dim = 17, rows = batch * seq;
    SCOPED_TRACE(testing::Message() << "seq=" << seq);
    const std::vector<float> in = random_floats(static_cast<std::size_t>(rows) * dim, 18);
    const std::vector<float> table = random_floats(static_cast<std::size_t>(seq + 2) * dim, 19);
    DeviceBuffer out(backend(), in), dtable(backend(), table);
    backend().position_forward(out.get(), dtable.get(), rows, seq, dim);
    expect_close(out.to_host(),
                 reference::add_positions(to_double(in), to_double(table), rows, seq, dim),
                 {0.0, 1.0}, "position_forward");

    const std::vector<float> d_out = random_floats(in.size(), 20);
    const Vector fd = finite_difference_gradient(
        [&](const Vector& t) { return reference::add_positions(to_double(in), t, rows, seq, dim); },
        to_double(table), to_double(d_out));
    DeviceBuffer dd_out(backend(), d_out), d_table(backend(), table.size());
    backend().position_backward(d_table.get(), dd_out.get(), rows, seq, dim);
    expect_close(d_table.to_host(), fd, kSum, "position_backward vs FD");
    backend().position_backward(d_table.get(), dd_out.get(), rows, seq, dim);
    expect_close(d_table.to_host(), scaled(fd, 2.0), twice(kSum), "position_backward accumulates");
  }
}

}  // namespace
}  // namespace tessera::test
