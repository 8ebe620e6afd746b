// The CUDA backends the conformance suite (tests/conformance) and the CUDA-only tests run on: the
// device under test computes its GEMMs in fp32; the bf16 ones in bf16 mixed precision, with
// cuDNN's attention where it runs the shape (cuda_bf16_backend) or tessera's own bf16 attention
// kernel always (cuda_bf16_native_backend). Each is created on first use, only with a GPU present.
#pragma once

#include "conformance_support.hpp"

namespace tessera::test {

Backend& cuda_bf16_backend();
Backend& cuda_bf16_native_backend();

}  // namespace tessera::test
