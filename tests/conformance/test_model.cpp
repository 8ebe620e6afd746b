// The whole model on the CPU backend and the device backend, both in fp32: the same tiny
// Transformer (same seed, same batch), one forward and backward (model_comparison.hpp).
#include "conformance_support.hpp"
#include "model_comparison.hpp"

namespace tessera::test {
namespace {

using ModelConformance = DeviceConformance;

TEST_F(ModelConformance, Gpt2MatchesTheCpuBackend) {
  compare_models(ModelFamily::gpt2, NormKind::layernorm, device_backend(), kFp32);
}

TEST_F(ModelConformance, OpenLmMatchesTheCpuBackend) {
  compare_models(ModelFamily::openlm, NormKind::layernorm, device_backend(), kFp32);
}

TEST_F(ModelConformance, OpenLmWithRmsNormMatchesTheCpuBackend) {
  compare_models(ModelFamily::openlm, NormKind::rmsnorm, device_backend(), kFp32);
}

}  // namespace
}  // namespace tessera::test
