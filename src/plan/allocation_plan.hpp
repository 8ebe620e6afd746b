// `tessera plan`: every valid layout of a model on N nodes of a machine, with the memory each
// needs per device (by part) and the time it takes per step, ranked by throughput; and what an
// allocation of T tokens then costs in days and node-hours.
#pragma once

#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "plan/hardware_profile.hpp"
#include "plan/layout_candidates.hpp"
#include "plan/memory_plan.hpp"
#include "plan/step_time.hpp"

namespace tessera {

/// One layout, planned.
struct PlannedLayout {
  LayoutCandidate candidate;
  StageMemory memory;  ///< the largest stage's
  bool fits = false;   ///< memory.total() within the profile's usable device memory
  StepTime time;
  double days = 0.0;          ///< to train the plan's tokens
  double node_hours = 0.0;    ///< days x 24 x nodes
  double device_hours = 0.0;  ///< GPU-hours (core-hours on a CPU node)
};

struct AllocationPlan {
  std::string hardware;  ///< the profile's name
  int nodes = 1;
  int devices = 1;  ///< nodes x devices per node: the job's ranks
  double parameters = 0.0;
  double tokens = 0.0;
  bool tokens_chosen = false;          ///< false: 20 tokens a parameter (Hoffmann et al. 2022)
  std::vector<PlannedLayout> fit;      ///< fastest first
  std::vector<PlannedLayout> too_big;  ///< fastest first: what they would do if they fit
};

/// Parameters of the whole model (the tied head counted once).
double parameter_count(const ModelConfig& model);

/// What to plan: the job's size, the tokens to train, which layouts.
struct AllocationRequest {
  int nodes = 1;
  int ranks_per_node = 0;      ///< 0: the profile's devices per node
  double tokens = 0.0;         ///< 0: 20 a parameter
  bool as_configured = false;  ///< only the configuration's own layout, not every valid one
};

/// Plans the layouts of `config` on the request's nodes of `profile`. UsageError for nodes < 1,
/// more ranks per node than devices, an invalid configured layout (as_configured), or a
/// precision the profile has no rate for. `limits` says what the enumeration varies (max_tp is
/// at most the ranks of a node whatever it says).
AllocationPlan plan_allocation(const Config& config, const HardwareProfile& profile,
                               const AllocationRequest& request,
                               const CandidateLimits& limits = {});

/// The plan's first `top` rows of each list as a terminal table ("table"), Markdown ("md"), CSV
/// ("csv", every row) or JSON ("json", every row).
std::string format_plan(const AllocationPlan& plan, const std::string& format, int top);

}  // namespace tessera
