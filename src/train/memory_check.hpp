// Before any work: whether the layout's memory plan fits what each rank has, so that a run too
// large for its devices stops with one line naming the largest part and a layout that fits,
// instead of dying in std::bad_alloc or the kernel's OOM killer minutes later.
#pragma once

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "parallel/layout/training_layout.hpp"
#include "parallel/parallel_context.hpp"
#include "plan/memory_plan.hpp"

namespace tessera {

/// The plan of `layout` on `backend`, checked against what this rank may use: its GPU's memory,
/// or its share of the host memory still available (split over the ranks of its node).
/// Throws UsageError on every rank (rank 0's line printed once) when some rank's stage does
/// not fit. Collective over the world.
MemoryPlan check_memory_fits(const Config& config, const TrainingLayout& layout,
                             const Backend& backend, ParallelContext& parallel);

}  // namespace tessera
