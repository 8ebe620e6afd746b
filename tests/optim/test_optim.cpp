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
  EXPECT_EQ(clip_factor(2.0f, 1.5), 1.0f);
  EXPECT_NEAR(clip_factor(2.0f, 8.0), 0.25f, 1e-6);
  EXPECT_EQ(clip_factor(0.0f, 100.0), 1.0f);  // 0 disables clipping
}

TEST(AdamW, ShardsOfTheBufferUpdateLikeTheWhole) {
  // ZeRO-1: two optimizers over two halves of the flat buffer (cutting through a parameter)
  // must produce the same parameters as one optimizer over all of it.
  auto backend = make_cpu_backend();
  Transformer whole_model(one_layer_model(), *backend), sharded_model(one_layer_model(), *backend);
  for (Transformer* model : {&whole_model, &sharded_model}) {
    ParameterStore& p = model->parameters();
    p.initialize(4);
    for (std::size_t i = 0; i < p.total_count(); ++i) {
      p.gradients()[i] = 0.01f * static_cast<float>((i * 37) % 11) - 0.05f;
    }
  }
  TrainConfig train;
  const std::size_t count = whole_model.parameters().total_count(), middle = count / 2 + 3;
  AdamW whole(train, whole_model.parameters(), *backend);
  AdamW first(train, sharded_model.parameters(), *backend, 0, middle);
  AdamW second(train, sharded_model.parameters(), *backend, middle, count);
  for (int step = 1; step <= 3; ++step) {
    whole.step(step, 1e-2, 0.5f);
    first.step(step, 1e-2, 0.5f);
    second.step(step, 1e-2, 0.5f);
  }
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_EQ(whole_model.parameters().values()[i], sharded_model.parameters().values()[i]) << i;
  }
}

}  // namespace
}  // namespace tessera
