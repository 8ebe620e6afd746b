// One training step of a tiny Transformer (both families, each norm) on the CPU backend and on a
// device backend: the loss and every parameter's gradient must agree within a stated tolerance,
// and a second run on the device must reproduce the first bit for bit.
#pragma once

#include "backend/backend.hpp"
#include "model/transformer.hpp"

namespace tessera::test {

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
inline constexpr ModelTolerance kFp32{1e-4, 1e-8, 1e-5};

void compare_models(ModelFamily family, NormKind norm_kind, Backend& device,
                    const ModelTolerance& tolerance);

}  // namespace tessera::test
