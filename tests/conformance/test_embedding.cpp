// Token and position embeddings, forward and backward, with vocabulary shards.
#include "conformance_support.hpp"

namespace tessera::test {
namespace {

using EmbeddingConformance = DeviceConformance;

struct EmbeddingCase {
  int rows, dim, vocab_begin, vocab_local, vocab;  ///< tokens are drawn from [0, vocab)
};
// Shards that hold all, part or none of the tokens; few table rows, so tokens repeat often.
const EmbeddingCase kCases[] = {{1, 5, 0, 3, 3},      {7, 17, 0, 4, 4},       {33, 64, 3, 10, 20},
                                {257, 17, 0, 50, 50}, {300, 64, 100, 7, 120}, {33, 5, 40, 8, 20}};

// Forward copies values; backward adds each table row's tokens in row order on both backends
// (the CUDA backend sorts stably, then adds each run in order), so results agree exactly.
TEST_F(EmbeddingConformance, TokenEmbeddingForwardAndBackward) {
  for (const EmbeddingCase& c : kCases) {
    SCOPED_TRACE(testing::Message() << "rows=" << c.rows << " dim=" << c.dim << " shard=["
                                    << c.vocab_begin << ", +" << c.vocab_local << ")");
    const std::size_t width = static_cast<std::size_t>(c.rows) * c.dim;
    const std::size_t table_count = static_cast<std::size_t>(c.vocab_local) * c.dim;
    PairedTokens tokens(random_tokens(static_cast<std::size_t>(c.rows), 11, 0, c.vocab));
    PairedBuffer table(random_floats(table_count, 12));
    PairedBuffer out(random_floats(width, 13));  // garbage that must be overwritten
    for_each_backend([&](Backend& b) {
      b.embedding_forward(out.on(b), tokens.on(b), table.on(b), c.rows, c.dim, c.vocab_begin,
                          c.vocab_local);
    });
    expect_match(out, kExact, "embedding_forward");
    PairedBuffer d_out(random_floats(width, 14));
    PairedBuffer d_table(random_floats(table_count, 15));  // gradients accumulate
    for_each_backend([&](Backend& b) {
      b.embedding_backward(d_table.on(b), tokens.on(b), d_out.on(b), c.rows, c.dim, c.vocab_begin,
                           c.vocab_local);
    });
    expect_match(d_table, kExact, "embedding_backward");
  }
}

TEST_F(EmbeddingConformance, PositionForwardAndBackward) {
  struct Case {
    int batch, seq, dim, table_rows;
  };
  for (const Case c : {Case{1, 1, 5, 1}, Case{7, 1, 17, 3}, Case{3, 13, 64, 16}, Case{11, 3, 17, 3},
                       Case{2, 129, 64, 200}}) {
    SCOPED_TRACE(testing::Message() << "batch=" << c.batch << " seq=" << c.seq << " dim=" << c.dim);
    const int rows = c.batch * c.seq;
    const std::size_t width = static_cast<std::size_t>(rows) * c.dim;
    const std::size_t table_count = static_cast<std::size_t>(c.table_rows) * c.dim;
    PairedBuffer table(random_floats(table_count, 16));
    PairedBuffer out(random_floats(width, 17));
    for_each_backend(
        [&](Backend& b) { b.position_forward(out.on(b), table.on(b), rows, c.seq, c.dim); });
    expect_match(out, kExact, "position_forward");
    PairedBuffer d_out(random_floats(width, 18));
    PairedBuffer d_table(random_floats(table_count, 19));
    for_each_backend(
        [&](Backend& b) { b.position_backward(d_table.on(b), d_out.on(b), rows, c.seq, c.dim); });
    expect_match(d_table, kExact, "position_backward");
  }
}

}  // namespace
}  // namespace tessera::test
