// Defaults of the optional backend operations.
#include "backend/backend.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace tessera {
namespace {

[[noreturn]] void not_offered(const Backend& backend, const char* operation) {
  throw InternalError("the " + std::string(backend.name()) + " backend does not implement " +
                      operation + " (needed for tensor parallelism); use parallel.tp = 1");
}

}  // namespace

void Backend::copy_device(float* dst, const float* src, std::size_t count) {
  std::vector<float> host(count);
  copy_to_host(host.data(), src, count);
  copy_from_host(dst, host.data(), count);
}

float adamw_inverse_correction(float beta, int step) {
  TESSERA_CHECK(step >= 1, "adamw_update: step is 1-based, got " + std::to_string(step));
  return static_cast<float>(1.0 / (1.0 - std::pow(double{beta}, step)));
}

double Backend::sum_of_squares_of_ranges(const float* base,
                                         const std::vector<BufferRange>& ranges) {
  double sum = 0.0;
  for (const BufferRange& range : ranges) sum += sum_of_squares(base + range.offset, range.count);
  return sum;
}

void Backend::linear_gelu_forward(float* pre, float* act, const float* in, const float* weight,
                                  const float* bias, int rows, int in_features, int out_features) {
  linear_forward(pre, in, weight, bias, rows, in_features, out_features);
  gelu_forward(act, pre, static_cast<std::size_t>(rows) * static_cast<std::size_t>(out_features));
}

std::size_t Backend::attention_state_count(const AttentionShape& shape) const {
  return static_cast<std::size_t>(shape.batch) * static_cast<std::size_t>(shape.n_heads) *
         static_cast<std::size_t>(shape.seq) * static_cast<std::size_t>(shape.seq);
}

void Backend::cross_entropy_shard_stats(float*, float*, float*, const float*, const int32_t*, int,
                                        int, int) {
  not_offered(*this, "cross_entropy_shard_stats");
}

void Backend::rebase_row_sums(float*, const float*, const float*, int) {
  not_offered(*this, "rebase_row_sums");
}

void Backend::cross_entropy_shard_finish(float*, float*, const float*, const int32_t*, const float*,
                                         const float*, const float*, int, int, int, float, float) {
  not_offered(*this, "cross_entropy_shard_finish");
}

}  // namespace tessera
