// The whole model on both backends: the same tiny Transformer (same seed, same batch), one
// forward and backward; loss and every parameter gradient must agree, and a second CUDA run must
// reproduce the first bit for bit. The CUDA side runs its GEMMs in fp32, then in bf16.
#include <cmath>
#include <string>

#include "conformance_support.hpp"
#include "model/transformer.hpp"

namespace tessera::test {
namespace {

using ModelConformance = CudaConformance;

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

// fp32 through two layers: each GEMM and reduction differs by a few ulps of its length (<= 256
// here); chained through the network the gradients of a tensor differ by ~1e-6 of its norm.
// 1e-4 of the norm leaves ample headroom while a wrong kernel moves a gradient by O(its norm).
// A gradient that is zero in exact arithmetic (gpt2's attn/k/bias: softmax ignores a shift of
// every key) is pure rounding noise on both backends, so the bound also allows 1e-8 of the
// global gradient norm (measured on an H100: 8e-11 against a global norm of ~1).
struct ModelTolerance {
  double gradient_relative_to_norm;
  double gradient_relative_to_global_norm;
  double loss_relative;
};
constexpr ModelTolerance kFp32{1e-4, 1e-8, 1e-5};

// bf16 GEMMs (u = 2^-8): each GEMM is off by about 0.82u of its output's norm on random data
// (test_linear_bf16.cpp), and a gradient here is the end of a chain of up to ~12 GEMMs (forward
// through two blocks and the head, backward down to the tensor) whose errors, independent, add
// in quadrature: sqrt(12) * 0.82u = 1.1e-2, and LayerNorm / softmax Jacobians of this well
// conditioned untrained model amplify that by a small factor. Bound 5e-2 (13u); a wrong kernel
// moves a gradient by O(its norm). Gradients that are zero in exact arithmetic (gpt2's
// attn/k/bias: sum_j dS_ij = 0 is not exact once dS is rounded to bf16) are bf16 rounding noise
// of dK's column sums, bounded by u of the global norm. The loss at initialisation is
// ~ln(vocab) for any function of small logits, so its bound (2e-3, ~u/2) guards against NaN and
// gross breakage only; logit errors of ~u relative average out over 64 tokens x 256 classes.
// Measured on an H100: gradients at most 7.7e-3 of their norm, the loss 2e-5 relative.
constexpr ModelTolerance kBf16{5e-2, 4e-3, 2e-3};

void compare_models(ModelFamily family, NormKind norm_kind, Backend& device,
                    const ModelTolerance& tolerance) {
  ModelConfig config = tiny(family);
  config.norm = norm_kind;
  const StepResult cpu = train_step(config, cpu_backend());
  const StepResult cuda = train_step(config, device);
  EXPECT_NEAR(cuda.loss, cpu.loss, tolerance.loss_relative * std::fabs(cpu.loss));
  std::cout << "[ match ] loss cpu " << cpu.loss << " cuda " << cuda.loss << "\n";
  const double global_norm = norm(cpu.gradients.data(), cpu.gradients.size());
  for (const ParameterInfo& info : parameter_infos(config)) {
    const float* g_cpu = cpu.gradients.data() + info.offset;
    const float* g_cuda = cuda.gradients.data() + info.offset;
    std::vector<float> difference(info.count);
    for (std::size_t i = 0; i < info.count; ++i) difference[i] = g_cuda[i] - g_cpu[i];
    const double reference = norm(g_cpu, info.count);
    const double error = norm(difference.data(), info.count);
    EXPECT_GT(reference, 0.0) << info.name << " has no gradient on the CPU";
    EXPECT_LE(error, tolerance.gradient_relative_to_norm * reference +
                         tolerance.gradient_relative_to_global_norm * global_norm)
        << info.name << ": |cuda - cpu| = " << error << ", |cpu| = " << reference;
    std::cout << "[ match ] " << info.name << ": |cuda - cpu| / |cpu| = " << error / reference
              << "\n";
  }
  const StepResult again = train_step(config, device);
  EXPECT_EQ(again.loss, cuda.loss) << "second CUDA run";
  expect_bitwise_equal(again.gradients, cuda.gradients, "gradients of a second CUDA run");
}

TEST_F(ModelConformance, Gpt2MatchesTheCpuBackend) {
  compare_models(ModelFamily::gpt2, NormKind::layernorm, cuda_backend(), kFp32);
}

TEST_F(ModelConformance, OpenLmMatchesTheCpuBackend) {
  compare_models(ModelFamily::openlm, NormKind::layernorm, cuda_backend(), kFp32);
}

TEST_F(ModelConformance, OpenLmWithRmsNormMatchesTheCpuBackend) {
  compare_models(ModelFamily::openlm, NormKind::rmsnorm, cuda_backend(), kFp32);
}

TEST_F(ModelConformance, Gpt2InBf16FollowsTheCpuBackend) {
  compare_models(ModelFamily::gpt2, NormKind::layernorm, cuda_bf16_backend(), kBf16);
}

TEST_F(ModelConformance, OpenLmInBf16FollowsTheCpuBackend) {
  compare_models(ModelFamily::openlm, NormKind::layernorm, cuda_bf16_backend(), kBf16);
}

TEST_F(ModelConformance, OpenLmWithRmsNormInBf16FollowsTheCpuBackend) {
  compare_models(ModelFamily::openlm, NormKind::rmsnorm, cuda_bf16_backend(), kBf16);
}

}  // namespace
}  // namespace tessera::test
