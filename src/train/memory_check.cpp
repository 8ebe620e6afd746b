#include "train/memory_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/error.hpp"
#include "core/host_facts.hpp"
#include "parallel/agreement.hpp"
#include "plan/layout_candidates.hpp"

namespace tessera {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

/// What one rank may hold, and where that figure comes from (for the message).
struct RankBudget {
  std::size_t bytes = 0;
  std::string source;
};

RankBudget rank_budget(const Backend& backend, const NodePlacement& node) {
  const DeviceDescription device = backend.describe_device();
  if (device.kind == "gpu") return {device.memory_bytes, "the memory of its GPU, " + device.name};
  const std::size_t host = available_host_memory().value_or(device.memory_bytes);
  return {host / static_cast<std::size_t>(node.local_ranks),
          fmt::format("{:.2f} GiB of host memory available, shared by {} rank(s) on this node",
                      static_cast<double>(host) / kGiB, node.local_ranks)};
}

/// The fitting layout that changes the fewest settings of `config`, then recomputes the least,
/// then keeps the largest micro-batch; nullopt when none fits.
std::optional<std::pair<LayoutCandidate, std::size_t>> nearest_fitting(
    const Config& config, int world_size, int node_ranks, const BackendMemoryTraits& traits,
    std::size_t budget) {
  std::optional<std::pair<LayoutCandidate, std::size_t>> best;
  auto rank = [&](const Config& candidate) {
    return std::make_tuple(changed_settings(config, candidate).size(),
                           static_cast<int>(candidate.train.recompute),
                           -candidate.train.micro_batch);
  };
  for (LayoutCandidate& candidate : enumerate_layouts(config, world_size, {.max_tp = node_ranks})) {
    const std::size_t bytes =
        plan_memory(candidate.config, candidate.layout, traits).peak().total();
    if (bytes > budget) continue;
    if (!best || rank(candidate.config) < rank(best->first.config)) {
      best.emplace(std::move(candidate), bytes);
    }
  }
  return best;
}

std::string settings_text(const Config& from, const Config& to) {
  std::string text;
  for (const SettingChange& change : changed_settings(from, to)) {
    text += fmt::format("{}--set {}={}", text.empty() ? "" : " ", change.key, change.after);
  }
  return text;
}

[[noreturn]] void refuse(const Config& config, const StageMemory& stage, const RankBudget& budget,
                         int world_size, int node_ranks, const BackendMemoryTraits& traits) {
  const MemoryPart largest = stage.largest();
  std::string fix = fmt::format(
      "no layout of this model and batch fits on {} rank(s); use more ranks or a smaller model",
      world_size);
  if (const auto nearest = nearest_fitting(config, world_size, node_ranks, traits, budget.bytes)) {
    fix = fmt::format("a layout that fits ({:.2f} GiB): {}",
                      static_cast<double>(nearest->second) / kGiB,
                      settings_text(config, nearest->first.config));
  }
  throw UsageError(fmt::format(
      "this layout needs {:.2f} GiB per rank on pipeline stage {} but a rank has {:.2f} GiB ({}); "
      "the largest part is {} ({:.2f} GiB; doc/scaling.md); {}",
      static_cast<double>(stage.total()) / kGiB, stage.stage,
      static_cast<double>(budget.bytes) / kGiB, budget.source, largest.name,
      static_cast<double>(largest.bytes) / kGiB, fix));
}

}  // namespace

MemoryPlan check_memory_fits(const Config& config, const TrainingLayout& layout,
                             const Backend& backend, ParallelContext& parallel) {
  const NodePlacement node = node_placement(parallel);
  const BackendMemoryTraits traits =
      memory_traits(config.train.backend, backend.describe_device().compute_units);
  MemoryPlan plan = plan_memory(config, layout, traits);
  run_agreed(parallel.world(), [&] {
    const StageMemory& mine = plan.stages.at(static_cast<std::size_t>(parallel.coordinates().pp));
    const RankBudget budget = rank_budget(backend, node);
    if (mine.total() > budget.bytes) {
      refuse(config, mine, budget, parallel.world().size(), node.local_ranks, traits);
    }
  });
  return plan;
}

}  // namespace tessera
