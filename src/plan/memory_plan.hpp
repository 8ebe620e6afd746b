// Memory plan: the bytes one rank's backend buffers hold at their peak for a layout, by part,
// computed from the configuration before anything is allocated. `tessera plan` ranks layouts
// with it and `tessera train` refuses a layout that would not fit; both count exactly the
// buffers the trainer allocates (parameters and gradients padded for ZeRO-1, AdamW's moments,
// every activation slot the pipeline schedule keeps in flight, recomputation's shared buffers,
// the evaluation slot, pipeline send copies, backward scratch), so the plan is checked against
// the backend's high-water mark (Backend::memory_use().peak_buffer_bytes), not against an
// estimate (doc/scaling.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "parallel/layout/training_layout.hpp"

namespace tessera {

/// What a backend keeps that the configuration does not say.
struct BackendMemoryTraits {
  /// The attention state kept for backward per sequence and head: the seq x seq probabilities
  /// (cpu, kokkos) or seq log-sum-exps (cuda's fused attention).
  bool attention_keeps_probabilities = true;
  /// Threads of a host backend: the CPU attention backward's scratch is seq x seq per thread.
  int threads = 1;
  /// Workspace that libraries allocate for themselves (cuBLASLt, cuDNN), in bytes.
  std::size_t library_workspace_bytes = 0;
};

/// The traits of `backend` with `threads` host threads.
BackendMemoryTraits memory_traits(BackendKind backend, int threads);

/// One part of a rank's memory, named for a reader ("parameters", "activations", ...).
struct MemoryPart {
  std::string name;
  std::size_t bytes = 0;
};

/// What every rank of one pipeline stage holds at its peak (the ranks of a stage hold the
/// same: tp and dp split nothing unevenly), in bytes by part.
struct StageMemory {
  int stage = 0;
  std::size_t parameters = 0;
  std::size_t gradients = 0;
  std::size_t optimizer_state = 0;  ///< AdamW's moments (this rank's shard under ZeRO-1)
  /// Every activation slot the schedule keeps in flight, the evaluation slot, recomputation's
  /// shared buffers.
  std::size_t activations = 0;
  /// Pipeline send copies, ZeRO-1's gradient shard, deterministic mode's per-microbatch
  /// gradients, the tied embedding's peer gradient.
  std::size_t communication_buffers = 0;
  std::size_t workspace = 0;  ///< backward scratch, the backend's own scratch and libraries'

  /// The parts by name, in the order above, for tables and records.
  std::vector<MemoryPart> parts() const;
  std::size_t total() const;
  MemoryPart largest() const;
};

struct MemoryPlan {
  std::vector<StageMemory> stages;  ///< one per pipeline stage
  /// The stage whose ranks hold the most: what must fit on every device.
  const StageMemory& peak() const;
};

/// The plan for `config` trained at `layout` on a backend with `traits`.
MemoryPlan plan_memory(const Config& config, const TrainingLayout& layout,
                       const BackendMemoryTraits& traits);

}  // namespace tessera
