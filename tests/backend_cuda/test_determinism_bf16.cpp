// Run-to-run reproducibility of the CUDA backend's bf16 attention, both paths.
#include "cuda_backends.hpp"

namespace tessera::test {
namespace {

using DeterminismConformance = DeviceConformance;

// cuDNN's attention backward is asked for its dP-workspace form, which computes dQ without atomics;
// the bf16 kernels of tessera are atomic-free by construction. gpt2-124m's head size.
TEST_F(DeterminismConformance, Bf16Attention) {
  const AttentionShape s{4, 256, 4, 64};
  const std::size_t qkv = static_cast<std::size_t>(s.batch) * s.seq * 3 * s.n_heads * s.head_dim;
  const std::size_t out = qkv / 3;
  for (Backend* device : {&cuda_bf16_backend(), &cuda_bf16_native_backend()}) {
    const std::size_t state = device->attention_state_count(s);
    expect_reproducible(
        {random_floats(qkv, 111), std::vector<float>(out), std::vector<float>(state),
         random_floats(out, 112), std::vector<float>(qkv)},
        [&](std::vector<float*>& b) {
          device->attention_forward(b[1], b[2], b[0], s);
          device->attention_backward(b[4], b[3], b[0], b[1], b[2], s);
        },
        device == &cuda_bf16_backend() ? "bf16 attention (cuDNN)" : "bf16 attention (native)",
        *device);
  }
}

}  // namespace
}  // namespace tessera::test
