// Runs a pipeline schedule table (parallel/pipeline_schedule.hpp) on this rank's model chunks,
// moving activations and their gradients between stages with non-blocking point-to-point sends.
//
// Chunk c of stage s computes virtual stage k = c * stages + s. A forward receives its input
// from virtual stage k - 1 and sends its output to k + 1; a backward receives the gradient of
// its output from k + 1 and sends the gradient of its input to k - 1. Receives block (their
// time is the measured pipeline wait); sends never do, which keeps every table deadlock-free.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "model/transformer.hpp"
#include "parallel/communicator.hpp"
#include "parallel/pipeline_schedule.hpp"

namespace tessera {

/// Host tokens of one microbatch, [batch, seq] each.
struct MicrobatchTokens {
  const int32_t* inputs = nullptr;
  const int32_t* targets = nullptr;
};

struct PipelineTimings {
  double compute_s = 0.0;  ///< forward and backward passes, less tensor-parallel communication
  double tp_comm_s = 0.0;  ///< tensor-parallel all-reduces inside those passes
  double wait_s = 0.0;     ///< blocked in receives: the pipeline bubble plus transfer time
};

class PipelineExecutor {
 public:
  /// `chunks[c]` computes virtual stage c * stages + stage; pp may be null when stages == 1.
  PipelineExecutor(std::vector<Transformer*> chunks, Communicator* pp, int stage, int stages,
                   Backend& backend);

  /// Hooks of one training step.
  struct StepHooks {
    /// Passed to the last backward of each chunk (data-parallel bucket reduction); may be null.
    std::function<const GradientsReadyHook*(int chunk)> final_backward;
    /// Runs after every backward (deterministic gradient capture); may be empty.
    std::function<void(int chunk, int microbatch)> after_backward;
  };

  /// Runs this stage's table for one optimizer step over `microbatches` microbatches of
  /// `batch` sequences. Returns each microbatch's loss sum (non-zero only on the last virtual
  /// stage).
  std::vector<double> run_step(const StageSchedule& schedule, int microbatches, int batch,
                               float grad_scale, const std::function<MicrobatchTokens(int)>& tokens,
                               const StepHooks& hooks);
  /// Called on the last virtual stage after each microbatch's forward with its per-token
  /// losses [batch * seq] (Transformer::token_losses).
  using TokenLossesSink = std::function<void(int microbatch, std::span<const float> losses)>;
  /// Forward passes only (evaluation): every microbatch through every virtual stage in order,
  /// in activation slots of their own. Returns each microbatch's loss sum as run_step does, and
  /// hands `token_losses` (when given) every microbatch's per-token losses.
  std::vector<double> run_forward(int microbatches, int batch,
                                  const std::function<MicrobatchTokens(int)>& tokens,
                                  const TokenLossesSink& token_losses = {});

  /// Time split of the runs since the last call, then reset.
  PipelineTimings take_timings();

 private:
  double forward(int chunk, int microbatch, int slot, int batch, float grad_scale,
                 const MicrobatchTokens& tokens);
  void backward(int chunk, int microbatch, int slot, int batch, const GradientsReadyHook* ready);
  int previous_stage() const { return (stage_ + stages_ - 1) % stages_; }
  int next_stage() const { return (stage_ + 1) % stages_; }
  int tag(int microbatch, int chunk, bool gradient) const;
  std::size_t activation_count(int batch) const;
  float* gradient_send_buffer(int chunk, int microbatch, int batch);
  void wait_for_sends();

  std::vector<Transformer*> chunks_;
  Communicator* pp_;
  int stage_, stages_;
  Backend& backend_;
  std::vector<Request> sends_;
  std::map<std::pair<int, int>, float*> gradient_buffers_;  // (chunk, microbatch) -> buffer
  std::unique_ptr<BufferPool> buffer_pool_;
  int gradient_buffer_batch_ = 0;
  PipelineTimings timings_;
};

}  // namespace tessera
