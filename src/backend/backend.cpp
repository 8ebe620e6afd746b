// Defaults of the optional backend operations.
#include "backend/backend.hpp"

#include <algorithm>
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

namespace {

/// cached_attention_forward on host memory: per (row, head), the softmax of the scores against
/// every position up to the row's own, in double, then the weighted sum of the values.
void host_cached_attention(float* out, const float* cache, int first, int count, int n_heads,
                           int head_dim) {
  const auto width = static_cast<std::size_t>(n_heads) * head_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  std::vector<double> scores, sum(static_cast<std::size_t>(head_dim));
  for (int i = 0; i < count; ++i) {
    const int keys = first + i + 1;
    scores.resize(static_cast<std::size_t>(keys));
    const float* row = cache + static_cast<std::size_t>(first + i) * 3 * width;
    for (int h = 0; h < n_heads; ++h) {
      const float* q = row + static_cast<std::size_t>(h) * head_dim;
      double max = -INFINITY;
      for (int j = 0; j < keys; ++j) {
        const float* k = cache + static_cast<std::size_t>(j) * 3 * width + width +
                         static_cast<std::size_t>(h) * head_dim;
        double dot = 0.0;
        for (int e = 0; e < head_dim; ++e) dot += static_cast<double>(q[e]) * k[e];
        scores[static_cast<std::size_t>(j)] = dot * scale;
        max = std::max(max, dot * scale);
      }
      double total = 0.0;
      for (double& score : scores) total += score = std::exp(score - max);
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int j = 0; j < keys; ++j) {
        const float* v = cache + static_cast<std::size_t>(j) * 3 * width + 2 * width +
                         static_cast<std::size_t>(h) * head_dim;
        for (int e = 0; e < head_dim; ++e) sum[e] += scores[static_cast<std::size_t>(j)] * v[e];
      }
      float* o = out + static_cast<std::size_t>(i) * width + static_cast<std::size_t>(h) * head_dim;
      for (int e = 0; e < head_dim; ++e) o[e] = static_cast<float>(sum[e] / total);
    }
  }
}

}  // namespace

void Backend::cached_attention_forward(float* out, const float* cache, int first, int count,
                                       int n_heads, int head_dim) {
  if (host_accessible()) return host_cached_attention(out, cache, first, count, n_heads, head_dim);
  const auto width = static_cast<std::size_t>(n_heads) * head_dim;
  std::vector<float> host_cache(static_cast<std::size_t>(first + count) * 3 * width);
  std::vector<float> host_out(static_cast<std::size_t>(count) * width);
  copy_to_host(host_cache.data(), cache, host_cache.size());
  host_cached_attention(host_out.data(), host_cache.data(), first, count, n_heads, head_dim);
  copy_from_host(out, host_out.data(), host_out.size());
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
