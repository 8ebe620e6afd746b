// The whole model with the CUDA backend's GEMMs in bf16 against the fp32 CPU backend.
#include "cuda_backends.hpp"
#include "model_comparison.hpp"

namespace tessera::test {
namespace {

using ModelConformance = DeviceConformance;

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
