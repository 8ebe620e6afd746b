#include "model/initializer.hpp"

#include <cmath>
#include <numbers>

#include "core/checksum.hpp"
#include "core/philox.hpp"

namespace tessera {

uint64_t name_stream(const std::string& name) {
  return fnv1a64(std::as_bytes(std::span<const char>(name)));
}

float counter_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  // One Philox block per element: element g never shares random words with element g + 1, so a
  // block of a tensor needs no knowledge of where its neighbours' numbers came from.
  const PhiloxCounter words = philox_block(seed, stream, index);
  const double u1 = bits_to_open_uniform(words[0]);
  const double u2 = bits_to_open_uniform(words[1]);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

void fill_parameter_block(const ParameterInfo& info, uint64_t seed, float* out) {
  if (info.init != InitKind::normal) {
    const float value = info.init == InitKind::ones ? 1.0f : 0.0f;
    for (std::size_t i = 0; i < info.count; ++i) out[i] = value;
    return;
  }
  const uint64_t stream = name_stream(info.name);
  const std::size_t rank = info.local_shape.size();
  // Row-major strides of the global tensor, to turn a local position into a global index.
  std::vector<int64_t> global_stride(rank, 1);
  for (std::size_t dim = rank; dim-- > 1;) {
    global_stride[dim - 1] = global_stride[dim] * info.global_shape[dim];
  }
#pragma omp parallel for schedule(static)
  for (std::size_t local = 0; local < info.count; ++local) {
    std::size_t rest = local;
    int64_t global = 0;
    for (std::size_t dim = rank; dim-- > 0;) {
      const auto extent = static_cast<std::size_t>(info.local_shape[dim]);
      const auto position = static_cast<int64_t>(rest % extent);
      rest /= extent;
      global += (position + info.global_offset[dim]) * global_stride[dim];
    }
    out[local] = info.init_std * counter_normal(seed, stream, static_cast<uint64_t>(global));
  }
}

}  // namespace tessera
