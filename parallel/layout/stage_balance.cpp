#include "parallel/layout/stage_balance.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>

#include "core/error.hpp"

namespace tessera {

double block_cost(const ModelConfig& model) {
  const double d = model.d_model, ffn = model.ffn_hidden, seq = model.seq_len;
  const double mlp_matrices = model.swiglu() ? 3.0 : 2.0;
  return 2.0 * (4.0 * d * d + mlp_matrices * d * ffn) + 4.0 * d * seq;  // + attention scores
}

double head_cost(const ModelConfig& model) {
  return 2.0 * static_cast<double>(model.vocab_size) * model.d_model;
}

double model_flops_per_token(const ModelConfig& model) {
  return 3.0 * (model.n_layers * block_cost(model) + head_cost(model));
}

std::vector<int> balance_stages(const ModelConfig& model, int virtual_stages) {
  const int layers = model.n_layers;
  TESSERA_CHECK(
      virtual_stages >= 1 && virtual_stages <= layers,
      std::to_string(virtual_stages) + " stages for " + std::to_string(layers) + " layers");
  // cost(k, a, b): blocks [a, b) as group k; the last group also carries the head.
  const double block = block_cost(model), head = head_cost(model);
  auto cost = [&](int group, int first, int end) {
    return block * (end - first) + (group == virtual_stages - 1 ? head : 0.0);
  };
  // best[k][b]: smallest possible maximum cost of groups 0..k covering blocks [0, b).
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  const auto rows = static_cast<std::size_t>(virtual_stages);
  const auto columns = static_cast<std::size_t>(layers) + 1;
  std::vector<std::vector<double>> best(rows, std::vector<double>(columns, kInfinity));
  std::vector<std::vector<int>> split(rows, std::vector<int>(columns, 0));
  for (int end = 1; end <= layers; ++end) best[0][static_cast<std::size_t>(end)] = cost(0, 0, end);
  for (std::size_t k = 1; k < rows; ++k) {
    for (int end = static_cast<int>(k) + 1; end <= layers; ++end) {
      for (int first = static_cast<int>(k); first < end; ++first) {
        const double candidate = std::max(best[k - 1][static_cast<std::size_t>(first)],
                                          cost(static_cast<int>(k), first, end));
        // Ties keep the earliest split, giving spare blocks to later stages: under 1F1B the
        // early stages hold the most microbatches' activations at once.
        if (candidate < best[k][static_cast<std::size_t>(end)]) {
          best[k][static_cast<std::size_t>(end)] = candidate;
          split[k][static_cast<std::size_t>(end)] = first;
        }
      }
    }
  }
  std::vector<int> bounds(rows + 1);
  bounds[rows] = layers;
  for (std::size_t k = rows - 1; k > 0; --k)
    bounds[k] = split[k][static_cast<std::size_t>(bounds[k + 1])];
  bounds[0] = 0;
  return bounds;
}

std::vector<int> stage_bounds(const ModelConfig& model, const ParallelConfig& parallel,
                              int virtual_stages) {
  if (parallel.stage_layers.empty()) return balance_stages(model, virtual_stages);
  const std::string& text = parallel.stage_layers;
  auto fail = [&](const std::string& problem) {
    throw UsageError("parallel.stage_layers = \"" + text + "\" " + problem + "; give " +
                     std::to_string(virtual_stages) + " positive block counts summing to " +
                     "model.n_layers = " + std::to_string(model.n_layers) +
                     ", e.g. \"3,3,2\", or leave it empty to balance by cost");
  };
  std::vector<int> bounds{0};
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    int count = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), count);
    if (error != std::errc{} || end != item.data() + item.size() || count < 1) {
      fail("has '" + item + "', not a positive integer");
    }
    bounds.push_back(bounds.back() + count);
    start = comma + 1;
  }
  if (static_cast<int>(bounds.size()) - 1 != virtual_stages) {
    fail("lists " + std::to_string(bounds.size() - 1) + " stages");
  }
  if (bounds.back() != model.n_layers) fail("sums to " + std::to_string(bounds.back()));
  return bounds;
}

}  // namespace tessera
