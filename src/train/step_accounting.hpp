// What one training step needs besides the model: the host tokens of its microbatches, the
// pipeline schedule of this stage, and the job-wide sums of losses and stage times.
#pragma once

#include <vector>

#include "io/config/config.hpp"
#include "io/data/data_loader.hpp"
#include "parallel/layout/training_layout.hpp"
#include "parallel/parallel_context.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "train/pipeline_executor.hpp"

namespace tessera {

/// Host-side token buffers for the microbatches one rank runs in a step.
class StepTokens {
 public:
  StepTokens(int microbatches, int batch, int seq);
  /// Reads `count` microbatches of `batch` global samples each, from `first_sample` on.
  void read(const DataLoader& data, Split split, int64_t first_sample, int count, int batch);
  MicrobatchTokens microbatch(int m) const;

 private:
  std::size_t per_microbatch_;
  std::vector<int32_t> inputs_, targets_;
};

/// Sums per-microbatch losses over the job in global microbatch order, so the figure is the
/// same bit for bit whatever the layout. Only one rank holds each microbatch's loss (the last
/// pipeline stage of tp rank 0 of its dp replica: `holder`); the others contribute zeros.
double global_loss_sum(const std::vector<double>& local, ParallelContext& parallel, bool holder);

/// Work shared out over the data-parallel replicas without repeating any: replica r of
/// `replicas` takes items [begin, end) of `count`, contiguous, shares differing by at most one.
struct ReplicaShare {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
ReplicaShare replica_share(int64_t count, int replicas, int replica);

/// Collective over the world: the `total` values of a job-wide list whose items
/// [first, first + local.size()) each `holder` rank computed (one holder per item), on every
/// rank, in list order.
std::vector<double> gather_item_values(const std::vector<double>& local, std::size_t first,
                                       std::size_t total, ParallelContext& parallel, bool holder);

/// Each pipeline stage's busy time (compute and tensor-parallel communication) and time blocked
/// waiting for a neighbour, as seen by the stage's first (tp 0, dp 0) rank.
struct StageTimes {
  std::vector<double> busy_s, wait_s;
  /// Idle over busy time of the most idle stage: what (p-1)/(v m) predicts.
  double bubble() const;
};

/// Collective over the world: every rank gets every stage's times.
StageTimes gather_stage_times(const PipelineTimings& local, ParallelContext& parallel);

}  // namespace tessera
