// What the CUDA backend's attention keeps and refuses: a state linear in seq, head sizes <= 128.
#include "core/error.hpp"
#include "cuda_backends.hpp"
#include "tests/support/attention_counts.hpp"

namespace tessera::test {
namespace {

using AttentionConformance = DeviceConformance;

// The point of the fused kernels: one log-sum-exp per query row instead of seq x seq
// probabilities (gpt2-124m at batch 8, seq 1024: 393,216 floats instead of 402,653,184).
TEST_F(AttentionConformance, StateGrowsLinearlyWithSeq) {
  const AttentionShape gpt2{8, 1024, 12, 64};
  EXPECT_EQ(device_backend().attention_state_count(gpt2), std::size_t{8} * 12 * 1024);
  EXPECT_EQ(cpu_backend().attention_state_count(gpt2), std::size_t{8} * 12 * 1024 * 1024);
  for (const int seq : {1, 1000, 2000, 64000}) {
    EXPECT_EQ(cuda_bf16_backend().attention_state_count({2, seq, 3, 128}),
              std::size_t{6} * static_cast<std::size_t>(seq))
        << "seq " << seq;
  }
}

TEST_F(AttentionConformance, RejectsHeadDimAbove128) {
  const AttentionShape s{1, 2, 1, 129};
  PairedBuffer qkv(random_floats(qkv_count(s), 79)), out(out_count(s));
  AttentionState state(device_backend(), s);
  EXPECT_THROW(device_backend().attention_forward(out.on(device_backend()), state.get(),
                                                  qkv.on(device_backend()), s),
               InternalError);
  EXPECT_THROW(device_backend().attention_backward(
                   qkv.on(device_backend()), out.on(device_backend()), qkv.on(device_backend()),
                   out.on(device_backend()), state.get(), s),
               InternalError);
}

}  // namespace
}  // namespace tessera::test
