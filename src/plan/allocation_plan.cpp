#include "plan/allocation_plan.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"

namespace tessera {
namespace {

constexpr double kTokensPerParameter = 20.0;  // Hoffmann et al. 2022 (Chinchilla)

PlannedLayout plan_layout(LayoutCandidate candidate, const HardwareProfile& profile,
                          const BackendMemoryTraits& traits, double tokens, int nodes) {
  PlannedLayout planned;
  planned.memory = plan_memory(candidate.config, candidate.layout, traits).peak();
  planned.fits = static_cast<double>(planned.memory.total()) <= profile.usable_bytes();
  planned.time = plan_step_time(candidate.config, candidate.layout, profile);
  planned.days = tokens / planned.time.tokens_per_s / 86400.0;
  planned.node_hours = planned.days * 24.0 * nodes;
  planned.device_hours = planned.node_hours * profile.devices_per_node;
  planned.candidate = std::move(candidate);
  return planned;
}

}  // namespace

double parameter_count(const ModelConfig& model) {
  Config config;
  config.model = model;
  TrainingLayout whole;  // one rank holds every block, the embedding and the head
  whole.stage_bounds = {0, model.n_layers};
  return static_cast<double>(plan_memory(config, whole, {}).stages.front().parameters) /
         sizeof(float);
}

AllocationPlan plan_allocation(const Config& config, const HardwareProfile& profile,
                               const AllocationRequest& request, const CandidateLimits& limits) {
  if (request.nodes < 1) {
    throw UsageError(fmt::format("--nodes {} must be at least 1", request.nodes));
  }
  const int per_node =
      request.ranks_per_node > 0 ? request.ranks_per_node : profile.devices_per_node;
  if (per_node > profile.devices_per_node) {
    throw UsageError(fmt::format("--ranks-per-node {} exceeds the {} devices of a node of {}",
                                 per_node, profile.devices_per_node, profile.name));
  }
  AllocationPlan plan;
  plan.hardware = profile.name;
  plan.nodes = request.nodes;
  plan.devices = request.nodes * per_node;
  plan.parameters = parameter_count(config.model);
  plan.tokens_chosen = request.tokens > 0.0;
  plan.tokens = plan.tokens_chosen ? request.tokens : kTokensPerParameter * plan.parameters;
  const BackendMemoryTraits traits = memory_traits(profile.backend, profile.threads_per_device);
  std::vector<LayoutCandidate> candidates;
  if (request.as_configured) {
    candidates.push_back({config, resolve_layout(config, plan.devices)});
  } else {
    CandidateLimits within_nodes = limits;
    within_nodes.max_tp = std::min(limits.max_tp, per_node);
    candidates = enumerate_layouts(config, plan.devices, within_nodes);
  }
  for (LayoutCandidate& candidate : candidates) {
    PlannedLayout planned =
        plan_layout(std::move(candidate), profile, traits, plan.tokens, request.nodes);
    (planned.fits ? plan.fit : plan.too_big).push_back(std::move(planned));
  }
  auto faster = [](const PlannedLayout& a, const PlannedLayout& b) {
    return a.time.tokens_per_s > b.time.tokens_per_s;
  };
  std::stable_sort(plan.fit.begin(), plan.fit.end(), faster);
  std::stable_sort(plan.too_big.begin(), plan.too_big.end(), faster);
  return plan;
}

}  // namespace tessera
