#include <gtest/gtest.h>

#include <cmath>

#include "model/transformer.hpp"
#include "optim/adamw.hpp"
#include "optim/lr_schedule.hpp"

namespace tessera {
namespace {

ModelConfig one_layer_model() {
  ModelConfig config;
  config.n_layers = 1;
  config.d_model = 8;
  config.n_heads = 2;
  config.seq_len = 4;
  config.vocab_size = 16;
  config.ffn_hidden = 32;
  return config;
}

TEST(LearningRate, WarmsUpLinearlyThenFollowsCosineToTheFloor) {
  TrainConfig train;
  train.lr = 1.0f;
  train.min_lr = 0.1f;
  train.warmup_steps = 10;
  train.steps = 110;
  EXPECT_DOUBLE_EQ(learning_rate(train, 1), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(train, 10), 1.0);
  EXPECT_NEAR(learning_rate(train, 60), 0.55, 1e-7);  // half way: mean of lr and min_lr
  EXPECT_NEAR(learning_rate(train, 110), 0.1, 1e-7);
  EXPECT_NEAR(learning_rate(train, 200), 0.1, 1e-7);  // stays at the floor past the end
  train.lr_schedule = LrSchedule::constant;
  EXPECT_DOUBLE_EQ(learning_rate(train, 60), 1.0);
}

TEST(AdamW, DecaysMatricesButNotEmbeddingsNormsOrBiasesByDefault) {
  auto backend = make_cpu_backend();
  Transformer model(one_layer_model(), *backend);
  ParameterStore& p = model.parameters();
  model.parameters().initialize(1);
  TrainConfig train;
  train.weight_decay = 0.5f;
  AdamW optimizer(train, p, *backend);
  // Zero gradients: AdamW's update is then weight decay alone (m = v = 0).
  auto value_of = [&](const std::string& name) { return p.value(p.index_of(name))[0]; };
  const float matrix = value_of("layers/0/attn/q/weight");
  const float embedding = value_of("embed/tokens/weight");
  const float gain = value_of("layers/0/attn_norm/gain");
  optimizer.step(1, 0.1, 1.0f);
  EXPECT_FLOAT_EQ(value_of("layers/0/attn/q/weight"), matrix * (1 - 0.1f * 0.5f));
  EXPECT_EQ(value_of("embed/tokens/weight"), embedding);
  EXPECT_EQ(value_of("layers/0/attn_norm/gain"), gain);
}

TEST(AdamW, ClipFactorLimitsTheGlobalNorm) {
  auto backend = make_cpu_backend();
  Transformer model(one_layer_model(), *backend);
  TrainConfig train;
  train.grad_clip = 2.0f;
  AdamW optimizer(train, model.parameters(), *backend);
  EXPECT_EQ(optimizer.clip_factor(1.5), 1.0f);
  EXPECT_NEAR(optimizer.clip_factor(8.0), 0.25f, 1e-6);
  train.grad_clip = 0.0f;
  AdamW unclipped(train, model.parameters(), *backend);
  EXPECT_EQ(unclipped.clip_factor(100.0), 1.0f);
}

}  // namespace
}  // namespace tessera
