#include "model_comparison.hpp"

#include <cmath>
#include <string>

#include "conformance_support.hpp"

namespace tessera::test {
namespace {

ModelConfig tiny(ModelFamily family) {
  ModelConfig config;
  config.family = family;
  config.n_layers = 2;
  config.d_model = 64;
  config.n_heads = 4;
  config.seq_len = 32;
  config.vocab_size = 256;
  config.ffn_hidden = 256;  // what load_config derives for d_model 64 in both families
  config.z_loss = family == ModelFamily::openlm ? 1e-4f : 0.0f;
  return config;
}

struct StepResult {
  double loss = 0.0;
  std::vector<float> gradients;
};

StepResult train_step(const ModelConfig& config, Backend& backend) {
  constexpr int kBatch = 2;
  const std::size_t tokens_count = static_cast<std::size_t>(kBatch) * config.seq_len;
  const std::vector<int32_t> tokens = random_tokens(tokens_count, 121, 0, config.vocab_size);
  const std::vector<int32_t> targets = random_tokens(tokens_count, 122, 0, config.vocab_size);
  Transformer model(config, backend);
  model.parameters().initialize(7);
  StepResult result;
  const float grad_scale = 1.0f / static_cast<float>(tokens_count);  // mean loss over tokens
  result.loss = model.forward(0, tokens.data(), targets.data(), kBatch, grad_scale);
  model.backward(0);
  result.gradients.resize(model.parameters().total_count());
  backend.copy_to_host(result.gradients.data(), model.parameters().gradients(),
                       result.gradients.size());
  return result;
}

/// Names and extents of the parameters, from a model that is never run.
std::vector<ParameterInfo> parameter_infos(const ModelConfig& config) {
  Transformer model(config, cpu_backend());
  return model.parameters().infos();
}

double norm(const float* x, std::size_t count) {
  double sum = 0.0;
  for (std::size_t i = 0; i < count; ++i) sum += static_cast<double>(x[i]) * x[i];
  return std::sqrt(sum);
}

}  // namespace

void compare_models(ModelFamily family, NormKind norm_kind, Backend& device,
                    const ModelTolerance& tolerance) {
  ModelConfig config = tiny(family);
  config.norm = norm_kind;
  const StepResult cpu = train_step(config, cpu_backend());
  const StepResult on_device = train_step(config, device);
  EXPECT_NEAR(on_device.loss, cpu.loss, tolerance.loss_relative * std::fabs(cpu.loss));
  std::cout << "[ match ] loss cpu " << cpu.loss << " device " << on_device.loss << "\n";
  const double global_norm = norm(cpu.gradients.data(), cpu.gradients.size());
  for (const ParameterInfo& info : parameter_infos(config)) {
    const float* g_cpu = cpu.gradients.data() + info.offset;
    const float* g_device = on_device.gradients.data() + info.offset;
    std::vector<float> difference(info.count);
    for (std::size_t i = 0; i < info.count; ++i) difference[i] = g_device[i] - g_cpu[i];
    const double reference = norm(g_cpu, info.count);
    const double error = norm(difference.data(), info.count);
    EXPECT_GT(reference, 0.0) << info.name << " has no gradient on the CPU";
    EXPECT_LE(error, tolerance.gradient_relative_to_norm * reference +
                         tolerance.gradient_relative_to_global_norm * global_norm)
        << info.name << ": |device - cpu| = " << error << ", |cpu| = " << reference;
    std::cout << "[ match ] " << info.name << ": |device - cpu| / |cpu| = " << error / reference
              << "\n";
  }
  const StepResult again = train_step(config, device);
  EXPECT_EQ(again.loss, on_device.loss) << "second run on the device";
  expect_bitwise_equal(again.gradients, on_device.gradients,
                       "gradients of a second run on the device");
}

}  // namespace tessera::test
