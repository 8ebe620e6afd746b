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
  UpdateTimings timings;
};

class ModelReplica {
 public:
  ModelReplica(const Config& config, Backend& backend, ParallelContext& parallel);
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
  /// two copies, clips to train.grad_clip and applies AdamW at `step` with rate `lr`.
  UpdateResult reduce_and_update(int step, double lr);
  /// FNV-1a 64 of this rank's parameter values, as 16 hex digits.
  std::string parameter_checksum() const;

 private:
  struct Chunk;
  void exchange_tied_embedding_gradients();
  void fold_captured_gradients_in_order();
  double global_gradient_norm();

  const Config& config_;
  Backend& backend_;
  ParallelContext& parallel_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

}  // namespace tessera
