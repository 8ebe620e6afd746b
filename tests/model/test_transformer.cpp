// Structure of the model: parameter names and shapes per family, FLOP count, slots.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "model/transformer.hpp"

namespace tessera {
namespace {

ModelConfig small(ModelFamily family) {
  ModelConfig config;
  config.family = family;
  config.n_layers = 2;
  config.d_model = 16;
  config.n_heads = 2;
  config.seq_len = 8;
  config.vocab_size = 32;
  config.ffn_hidden = family == ModelFamily::gpt2 ? 64 : 24;
  return config;
}

TEST(Transformer, Gpt2HasTiedHeadBiasesAndPositions) {
  auto backend = make_cpu_backend();
  Transformer model(small(ModelFamily::gpt2), *backend);
  const ParameterStore& p = model.parameters();
  EXPECT_EQ(p.info(p.index_of("embed/positions/weight")).global_shape,
            (std::vector<int64_t>{8, 16}));
  EXPECT_NO_THROW(p.index_of("layers/1/attn/q/bias"));
  EXPECT_NO_THROW(p.index_of("layers/0/mlp/fc/bias"));
  EXPECT_THROW(p.index_of("head/weight"), InternalError);
  // Embedding 32x16, positions 8x16, per layer: 2 norms (2x2x16), qkv+out 4x(16x16+16),
  // mlp 64x16+64+16x64+16; final norm 2x16.
  const std::size_t per_layer = 4 * 16 + 4 * (256 + 16) + (1024 + 64 + 1024 + 16);
  EXPECT_EQ(p.total_count(), 32u * 16 + 8 * 16 + 2 * per_layer + 32);
}

TEST(Transformer, OpenLmIsUntiedWithoutBiasesOrPositions) {
  auto backend = make_cpu_backend();
  ModelConfig config = small(ModelFamily::openlm);
  config.norm = NormKind::rmsnorm;
  Transformer model(config, *backend);
  const ParameterStore& p = model.parameters();
  EXPECT_EQ(p.info(p.index_of("head/weight")).global_shape, (std::vector<int64_t>{32, 16}));
  EXPECT_THROW(p.index_of("embed/positions/weight"), InternalError);
  EXPECT_THROW(p.index_of("layers/0/attn/q/bias"), InternalError);
  EXPECT_THROW(p.index_of("layers/0/attn_norm/bias"), InternalError);  // RMSNorm: gain only
  EXPECT_EQ(p.info(p.index_of("layers/0/mlp/down/weight")).global_shape,
            (std::vector<int64_t>{16, 24}));
}

TEST(Transformer, QkvAreAdjacentSoTheyRunAsOneGemm) {
  auto backend = make_cpu_backend();
  Transformer model(small(ModelFamily::gpt2), *backend);
  const ParameterStore& p = model.parameters();
  const auto& q = p.info(p.index_of("layers/0/attn/q/weight"));
  const auto& k = p.info(p.index_of("layers/0/attn/k/weight"));
  const auto& v = p.info(p.index_of("layers/0/attn/v/weight"));
  EXPECT_EQ(k.offset, q.offset + q.count);
  EXPECT_EQ(v.offset, k.offset + k.count);
}

TEST(Transformer, FlopsPerTokenFollowsThePalmFormula) {
  auto backend = make_cpu_backend();
  const ModelConfig config = small(ModelFamily::gpt2);
  Transformer model(config, *backend);
  // Matrices used in products: per layer 4 x 16x16 + 2 x 64x16; the tied head 32x16.
  const double matmul = 2 * (4 * 256 + 2 * 1024) + 32 * 16;
  EXPECT_DOUBLE_EQ(model.flops_per_token(), 6 * matmul + 12.0 * 2 * 16 * 8);
}

TEST(Transformer, ForwardIsRepeatableAndSlotsAreIndependent) {
  auto backend = make_cpu_backend();
  const ModelConfig config = small(ModelFamily::openlm);
  Transformer model(config, *backend);
  model.parameters().initialize(3);
  std::vector<int32_t> tokens(16), targets(16), other(16);
  for (int i = 0; i < 16; ++i) {
    tokens[i] = (i * 7) % 32;
    targets[i] = (i * 5 + 1) % 32;
    other[i] = (i * 3 + 2) % 32;
  }
  const double first = model.forward(0, tokens.data(), targets.data(), 2, 0.0f);
  model.forward(1, other.data(), targets.data(), 2, 0.0f);  // must not disturb slot 0
  EXPECT_EQ(model.forward(0, tokens.data(), targets.data(), 2, 0.0f), first);
  EXPECT_NEAR(first / 16, std::log(32.0), 0.2);  // near-uniform predictions at initialisation
}

/// Gradients after two microbatches in flight (forward 0, forward 1, backward 1, backward 0, as a
/// pipeline schedule interleaves them), and the activation bytes held, under `recompute`.
struct RecomputeRun {
  std::vector<float> gradients;
  std::size_t activation_bytes = 0;
};

RecomputeRun train_two_microbatches(ModelFamily family, Recompute recompute) {
  auto backend = make_cpu_backend();
  ModelPartition partition;
  partition.recompute = recompute;
  Transformer model(small(family), *backend, partition);
  model.parameters().initialize(5);
  std::vector<int32_t> tokens(16), targets(16), other(16);
  for (int i = 0; i < 16; ++i) {
    tokens[i] = (i * 7) % 32;
    targets[i] = (i * 5 + 1) % 32;
    other[i] = (i * 3 + 2) % 32;
  }
  model.forward(0, tokens.data(), targets.data(), 2, 1.0f / 32);
  model.forward(1, other.data(), tokens.data(), 2, 1.0f / 32);
  model.backward(1);
  model.backward(0);
  RecomputeRun run;
  run.gradients.resize(model.parameters().padded_count());
  backend->copy_to_host(run.gradients.data(), model.parameters().gradients(), run.gradients.size());
  run.activation_bytes = model.activation_bytes();
  return run;
}

TEST(Transformer, RecomputationGivesBitwiseTheSameGradientsWithLessMemory) {
  for (ModelFamily family : {ModelFamily::gpt2, ModelFamily::openlm}) {
    const RecomputeRun kept = train_two_microbatches(family, Recompute::none);
    const RecomputeRun selective = train_two_microbatches(family, Recompute::selective);
    const RecomputeRun full = train_two_microbatches(family, Recompute::full);
    ASSERT_EQ(kept.gradients.size(), full.gradients.size());
    double norm = 0.0;
    for (float g : kept.gradients) norm += static_cast<double>(g) * g;
    EXPECT_GT(norm, 0.0);
    const std::size_t bytes = kept.gradients.size() * sizeof(float);
    EXPECT_EQ(std::memcmp(kept.gradients.data(), selective.gradients.data(), bytes), 0);
    EXPECT_EQ(std::memcmp(kept.gradients.data(), full.gradients.data(), bytes), 0);
    // Two slots x two blocks of [2, 2 heads, 8, 8] probabilities are kept without recompute;
    // selective keeps one shared set of them.
    const std::size_t probs = 2 * 2 * 8 * 8 * sizeof(float);
    EXPECT_EQ(kept.activation_bytes - selective.activation_bytes, (2 * 2 - 1) * probs);
    EXPECT_LT(full.activation_bytes, selective.activation_bytes);
  }
}

}  // namespace
}  // namespace tessera
