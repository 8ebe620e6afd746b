// This rank's part of one model replica, and everything that updating it takes: its model
// chunks (one per virtual pipeline stage it computes), their data-parallel gradient reduction,
// the tied-embedding gradient exchange between the first and last stage, the global gradient
// norm, clipping, and AdamW (replicated, or sharded over dp under ZeRO-1).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "model/transformer.hpp"
#include "optim/adamw.hpp"
#include "parallel/layout/training_layout.hpp"
#include "parallel/parallel_context.hpp"
#include "train/gradient_sync.hpp"
#include "train/pipeline_executor.hpp"

namespace tessera {

struct UpdateTimings {
  double dp_wait_s = 0.0;    ///< data-parallel communication backward did not hide
  double optimizer_s = 0.0;  ///< norm, clipping, AdamW (and ZeRO-1's collectives)
};

struct UpdateResult {
  double grad_norm = 0.0;  ///< global L2 norm before clipping
  /// The loss or the gradient norm was not finite: the weights and optimizer state were left as
  /// they were. Every rank sees the same.
  bool skipped = false;
  UpdateTimings timings;
};

/// How this rank of `parallel`'s grid holds `chunk` of its pipeline stage under `layout`: its
/// blocks, its tensor-parallel share, the padding ZeRO-1 needs, what backward recomputes.
ModelPartition chunk_partition(const Config& config, const TrainingLayout& layout,
                               const StageChunk& chunk, ParallelContext& parallel);

class ModelReplica {
 public:
  /// The chunks of this rank's pipeline stage under `layout`, on `parallel`'s grid.
  ModelReplica(const Config& config, const TrainingLayout& layout, Backend& backend,
               ParallelContext& parallel);
  ~ModelReplica();

  std::vector<Transformer*> chunks();
  /// A model chunk with its optimizer (for checkpoints).
  struct ChunkState {
    Transformer& model;
    AdamW& optimizer;
  };
  std::vector<ChunkState> chunk_states();
  /// Draws the initial parameters (the same values whatever the layout).
  void initialize(uint64_t seed);
  void zero_gradients();
  /// Hooks for PipelineExecutor::run_step: bucketed reduction during the last backward, or
  /// the capture of every microbatch's gradients in deterministic mode.
  PipelineExecutor::StepHooks step_hooks();
  /// After the step's backward passes: reduces gradients over dp, sums the tied embedding's
  /// two copies, clips to train.grad_clip and applies AdamW at `step` with rate `lr`, unless the
  /// step's loss (`loss_finite`, the same on every rank) or gradient norm is not finite.
  UpdateResult reduce_and_update(int step, double lr, bool loss_finite);
  /// Whether every parameter and optimizer moment of every rank is finite. Collective.
  bool state_is_finite();
  /// FNV-1a 64 of this rank's parameter values, as 16 hex digits.
  std::string parameter_checksum() const;

 private:
  struct Chunk;
  void exchange_tied_embedding_gradients();
  void fold_captured_gradients_in_order();
  double global_gradient_norm();
  /// debug.nan_gradients_from: makes this step's gradients NaN on every rank.
  void inject_nan_gradients(int step);

  const Config& config_;
  Backend& backend_;
  ParallelContext& parallel_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

}  // namespace tessera
