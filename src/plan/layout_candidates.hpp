// Every layout a job of a given size could train a model with: the planner ranks them, and a
// training run that would not fit in memory names the nearest one that does.
#pragma once

#include <functional>
#include <vector>

#include "io/config/config.hpp"
#include "parallel/layout/training_layout.hpp"

namespace tessera {

/// One way to run: the base configuration with this layout's settings, and the layout it
/// resolves to.
struct LayoutCandidate {
  Config config;
  TrainingLayout layout;
};

/// What the enumeration may vary (every valid combination is listed).
struct CandidateLimits {
  int max_tp = 1 << 20;  ///< tensor-parallel groups stay inside a node: its devices
  bool vary_micro_batch = true;
  bool vary_recompute = true;
  bool vary_zero = true;
  bool vary_schedule = true;  ///< 1F1B, GPipe, interleaved with 2 chunks per stage
};

/// The valid layouts of `base` on `world_size` ranks: dp x tp x pp (tp <= max_tp), the
/// micro-batch (divisors of global_batch / dp), recomputation, ZeRO-1 (with dp > 1), the
/// pipeline schedule (with pp > 1) and sequence parallelism (on whenever tp > 1: it saves memory
/// at the same communication volume). Every other setting is the base's (parallel.dp stays 0,
/// derived, where the base's is); stage_layers is cleared (stages balanced by cost) where the
/// stages change. In a fixed order; empty when none is valid.
std::vector<LayoutCandidate> enumerate_layouts(const Config& base, int world_size,
                                               const CandidateLimits& limits = {});

}  // namespace tessera
