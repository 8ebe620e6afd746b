// golden_dump: runs one small transformer case on the CPU backend and writes everything the
// independent PyTorch model (reference_model.py) needs to check it, for test_golden.py.
//
//   golden_dump <case> <output-dir>      (golden_dump --list prints the case names)
//
// The output directory receives, all little-endian (float32 or int32, row-major):
//   config.json            model and optimizer settings, batch size, file shapes
//   manifest.json          every parameter: name, shape, offset (elements) into the blobs below
//   params_init.bin        initial parameters, concatenated in manifest order
//   tokens.bin targets.bin [batch, seq] int32
//   logits.bin             [batch * seq, vocab] from a forward with grad_scale 0 (slot 1)
//   grads.bin              gradients of the mean loss after forward(1 / (batch*seq)) + backward
//   train_tokens.bin train_targets.bin  [steps, batch, seq] int32, one batch per AdamW step
//   train_grads.bin        [steps, parameters] gradients of each step, before clipping
//   train_params.bin       [steps, parameters] parameters after each step
//   params_final.bin       parameters after the last AdamW step
//   results.json           losses, and per step: loss, lr, gradient norm, clip factor
#include <bit>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "model/initializer.hpp"
#include "model/transformer.hpp"
#include "optim/adamw.hpp"
#include "optim/lr_schedule.hpp"

static_assert(std::endian::native == std::endian::little, "the .bin files are little-endian");

namespace tessera {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kTrainSlot = 0;  // the slots src/train/trainer.cpp uses
constexpr int kEvalSlot = 1;

struct GoldenCase {
  std::string name;
  ModelConfig model;
  TrainConfig train;
  int batch = 3;
  /// Spread given to norm gains and biases, which start at exactly 1 and 0: those values would
  /// hide a kernel that forgets to apply a gain or a bias, or gets its gradient wrong.
  float norm_and_bias_noise = 0.1f;
};

TrainConfig golden_train_config() {
  TrainConfig train;
  train.steps = 10;
  train.seed = 7;
  train.lr = 1e-2f;  // large enough that 10 steps move the loss visibly
  train.min_lr = 1e-3f;
  train.warmup_steps = 3;  // 3 warm-up steps, then 7 of cosine decay
  train.weight_decay = 0.1f;
  train.beta1 = 0.9f;
  train.beta2 = 0.95f;
  train.adam_eps = 1e-8f;
  train.grad_clip = 1.0f;
  return train;
}

ModelConfig model_config(ModelFamily family, int seq, int vocab, int d_model, int ffn_hidden) {
  ModelConfig model;
  model.family = family;
  model.n_layers = 2;
  model.d_model = d_model;
  model.n_heads = 4;
  model.seq_len = seq;
  model.vocab_size = vocab;
  model.ffn_hidden = ffn_hidden;
  model.init_std = 0.1f;  // wider than the default 0.02 so attention is far from uniform
  return model;
}

std::vector<GoldenCase> golden_cases() {
  const TrainConfig train = golden_train_config();
  std::vector<GoldenCase> cases;
  // ffn_hidden as derived by the config: 4 * d_model for gpt2, 256 * ceil(8d/3/256) for openlm.
  cases.push_back({"gpt2_small", model_config(ModelFamily::gpt2, 16, 64, 32, 128), train});
  cases.push_back({"gpt2_odd", model_config(ModelFamily::gpt2, 12, 50, 24, 48), train});
  cases.back().model.n_layers = 3;
  cases.back().model.init_std = 0.02f;  // the default initialisation
  cases.push_back({"openlm_small", model_config(ModelFamily::openlm, 16, 64, 32, 256), train});
  cases.push_back({"openlm_rmsnorm_odd", model_config(ModelFamily::openlm, 12, 50, 24, 48), train});
  cases.back().model.norm = NormKind::rmsnorm;
  cases.push_back({"openlm_zloss", model_config(ModelFamily::openlm, 12, 50, 32, 48), train});
  cases.back().model.z_loss = 1e-3f;
  cases.push_back(
      {"openlm_rmsnorm_zloss", model_config(ModelFamily::openlm, 16, 64, 32, 48), train});
  cases.back().model.norm = NormKind::rmsnorm;
  cases.back().model.z_loss = 1e-3f;
  return cases;
}

const GoldenCase& find_case(const std::vector<GoldenCase>& cases, const std::string& name) {
  for (const GoldenCase& c : cases) {
    if (c.name == name) return c;
  }
  throw std::runtime_error("unknown case '" + name + "'; run golden_dump --list for the names");
}

template <typename T>
void write_binary(const fs::path& path, const std::vector<T>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(T)));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void write_json(const fs::path& path, const json& value) {
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::vector<float> to_host(Backend& backend, const float* device, std::size_t count) {
  std::vector<float> host(count);
  backend.copy_to_host(host.data(), device, count);
  return host;
}

json describe(const GoldenCase& c) {
  const ModelConfig& m = c.model;
  const TrainConfig& t = c.train;
  return {{"case", c.name},
          {"model",
           {{"family", m.family == ModelFamily::gpt2 ? "gpt2" : "openlm"},
            {"n_layers", m.n_layers},
            {"d_model", m.d_model},
            {"n_heads", m.n_heads},
            {"seq_len", m.seq_len},
            {"vocab_size", m.vocab_size},
            {"ffn_hidden", m.ffn_hidden},
            {"norm", m.norm == NormKind::layernorm ? "layernorm" : "rmsnorm"},
            {"norm_eps", m.norm_eps},
            {"rotary_base", m.rotary_base},
            {"z_loss", m.z_loss},
            {"init_std", m.init_std}}},
          {"train",
           {{"steps", t.steps},
            {"seed", t.seed},
            {"lr", t.lr},
            {"min_lr", t.min_lr},
            {"warmup_steps", t.warmup_steps},
            {"lr_schedule", t.lr_schedule == LrSchedule::cosine ? "cosine" : "constant"},
            {"weight_decay", t.weight_decay},
            {"beta1", t.beta1},
            {"beta2", t.beta2},
            {"adam_eps", t.adam_eps},
            {"grad_clip", t.grad_clip},
            {"decay_norms_and_biases", t.decay_norms_and_biases},
            {"decay_embeddings", t.decay_embeddings}}},
          {"batch", c.batch},
          {"norm_and_bias_noise", c.norm_and_bias_noise}};
}

json describe_parameters(const ParameterStore& parameters) {
  json manifest = json::array();
  for (const ParameterInfo& info : parameters.infos()) {
    manifest.push_back({{"name", info.name},
                        {"shape", info.global_shape},
                        {"offset", info.offset},
                        {"count", info.count}});
  }
  return manifest;
}

/// Moves gains and biases off 1 and 0 by norm_and_bias_noise * N(0, 1), reproducibly.
void perturb_norms_and_biases(ParameterStore& parameters, Backend& backend, uint64_t seed,
                              float noise) {
  for (std::size_t i = 0; i < parameters.infos().size(); ++i) {
    const ParameterInfo& info = parameters.info(i);
    if (info.init == InitKind::normal) continue;
    std::vector<float> host = to_host(backend, parameters.value(i), info.count);
    const uint64_t stream = name_stream(info.name) ^ 0x5eedull;
    for (std::size_t k = 0; k < host.size(); ++k)
      host[k] += noise * counter_normal(seed, stream, k);
    backend.copy_from_host(parameters.value(i), host.data(), info.count);
  }
}

/// Uniform random token ids in [0, vocab), from a seeded generator (the values are written out,
/// so the distribution's implementation does not matter).
std::vector<int32_t> random_tokens(std::mt19937_64& generator, std::size_t count, int vocab) {
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<int32_t> tokens(count);
  for (int32_t& t : tokens) t = token(generator);
  return tokens;
}

/// Logits and loss (grad_scale 0, slot 1), then gradients of the mean loss (slot 0).
json dump_forward_backward(const GoldenCase& c, Transformer& model, Backend& backend,
                           std::mt19937_64& generator, const fs::path& dir) {
  const std::size_t rows = static_cast<std::size_t>(c.batch) * c.model.seq_len;
  const std::vector<int32_t> tokens = random_tokens(generator, rows, c.model.vocab_size);
  const std::vector<int32_t> targets = random_tokens(generator, rows, c.model.vocab_size);
  write_binary(dir / "tokens.bin", tokens);
  write_binary(dir / "targets.bin", targets);

  const double eval_sum = model.forward(kEvalSlot, tokens.data(), targets.data(), c.batch, 0.0f);
  const std::size_t vocab = static_cast<std::size_t>(c.model.vocab_size);
  write_binary(dir / "logits.bin", to_host(backend, model.logits(kEvalSlot), rows * vocab));

  ParameterStore& parameters = model.parameters();
  parameters.zero_gradients();
  const double train_sum = model.forward(kTrainSlot, tokens.data(), targets.data(), c.batch,
                                         static_cast<float>(1.0 / static_cast<double>(rows)));
  model.backward(kTrainSlot);
  write_binary(dir / "grads.bin",
               to_host(backend, parameters.gradients(), parameters.total_count()));
  return {{"eval_loss", eval_sum / static_cast<double>(rows)},
          {"train_forward_loss", train_sum / static_cast<double>(rows)}};
}

/// c.train.steps AdamW steps exactly as src/train/trainer.cpp takes them (one microbatch a step).
json dump_training(const GoldenCase& c, Transformer& model, Backend& backend,
                   std::mt19937_64& generator, const fs::path& dir) {
  const TrainConfig& train = c.train;
  const std::size_t rows = static_cast<std::size_t>(c.batch) * c.model.seq_len;
  const std::size_t steps = static_cast<std::size_t>(train.steps);
  const std::vector<int32_t> tokens = random_tokens(generator, steps * rows, c.model.vocab_size);
  const std::vector<int32_t> targets = random_tokens(generator, steps * rows, c.model.vocab_size);
  write_binary(dir / "train_tokens.bin", tokens);
  write_binary(dir / "train_targets.bin", targets);

  ParameterStore& parameters = model.parameters();
  AdamW optimizer(train, parameters, backend);
  const float grad_scale = static_cast<float>(1.0 / static_cast<double>(rows));
  const std::size_t count = parameters.total_count();
  std::vector<float> step_grads, step_params;  // [steps, count] each
  json records = json::array();
  for (int step = 1; step <= train.steps; ++step) {
    const std::size_t first = static_cast<std::size_t>(step - 1) * rows;
    parameters.zero_gradients();
    const double loss_sum = model.forward(kTrainSlot, tokens.data() + first, targets.data() + first,
                                          c.batch, grad_scale);
    model.backward(kTrainSlot);
    const double grad_norm =
        std::sqrt(backend.sum_of_squares(parameters.gradients(), parameters.total_count()));
    const double lr = learning_rate(train, step);
    const float clip = clip_factor(train.grad_clip, grad_norm);
    const std::vector<float> grads = to_host(backend, parameters.gradients(), count);
    step_grads.insert(step_grads.end(), grads.begin(), grads.end());
    optimizer.step(step, lr, clip);
    const std::vector<float> values = to_host(backend, parameters.values(), count);
    step_params.insert(step_params.end(), values.begin(), values.end());
    records.push_back({{"step", step},
                       {"loss", loss_sum / static_cast<double>(rows)},
                       {"lr", lr},
                       {"grad_norm", grad_norm},
                       {"clip_factor", clip}});
  }
  write_binary(dir / "train_grads.bin", step_grads);
  write_binary(dir / "train_params.bin", step_params);
  write_binary(dir / "params_final.bin", to_host(backend, parameters.values(), count));
  return records;
}

void dump_case(const GoldenCase& c, const fs::path& dir) {
  fs::create_directories(dir);
  std::unique_ptr<Backend> backend = make_cpu_backend();
  Transformer model(c.model, *backend);
  ParameterStore& parameters = model.parameters();
  parameters.initialize(c.train.seed);
  perturb_norms_and_biases(parameters, *backend, c.train.seed, c.norm_and_bias_noise);
  write_json(dir / "config.json", describe(c));
  write_json(dir / "manifest.json", describe_parameters(parameters));
  write_binary(dir / "params_init.bin",
               to_host(*backend, parameters.values(), parameters.total_count()));

  std::mt19937_64 generator(c.train.seed);
  json results = dump_forward_backward(c, model, *backend, generator, dir);
  results["steps"] = dump_training(c, model, *backend, generator, dir);
  write_json(dir / "results.json", results);
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  try {
    const std::vector<tessera::GoldenCase> cases = tessera::golden_cases();
    if (argc == 2 && std::string(argv[1]) == "--list") {
      for (const tessera::GoldenCase& c : cases) std::cout << c.name << "\n";
      return 0;
    }
    if (argc != 3) {
      std::cerr << "usage: golden_dump <case> <output-dir>   (golden_dump --list for cases)\n";
      return 2;
    }
    tessera::dump_case(tessera::find_case(cases, argv[1]), argv[2]);
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "golden_dump: " << error.what() << "\n";
    return 1;
  }
}
