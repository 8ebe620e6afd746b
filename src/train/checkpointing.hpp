// Saving and resuming a training run through checkpoint files of logical tensors
// (io/checkpoint): parameters under model/<name>, AdamW moments under optimizer/m/<name> and
// optimizer/v/<name>, each with its global shape, each rank writing and reading the block it
// holds. A run can therefore resume at any (dp, tp, pp) layout and ZeRO setting.
#pragma once

#include <optional>

#include "backend/backend.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "parallel/parallel_context.hpp"
#include "train/model_replica.hpp"

namespace tessera {

class TrainingCheckpoints {
 public:
  TrainingCheckpoints(const Config& config, ParallelContext& parallel, ModelReplica& replica,
                      Backend& backend);

  /// Loads the newest valid checkpoint in checkpoint.dir into the replica (falling back to an
  /// older one, with a warning, when the newest is damaged). Returns the step it was written
  /// after, or 0 when there is none. Collective.
  int restore(const std::function<void(const std::string&)>& warn);
  /// Writes the state after step `step`. Collective.
  void save(int step);
  /// Size of the file last saved or restored, in bytes.
  std::uintmax_t last_file_bytes() const { return last_file_bytes_; }

 private:
  /// Host copies of this rank's moments laid out like its parameters (gathered over dp under
  /// ZeRO-1), one per chunk.
  struct HostState;
  HostState gather_state();

  const Config& config_;
  ParallelContext& parallel_;
  ModelReplica& replica_;
  Backend& backend_;
  CheckpointDirectory directory_;
  std::uintmax_t last_file_bytes_ = 0;
};

/// checkpoint.dir, or <run.dir>/checkpoints when it is empty.
std::filesystem::path checkpoint_directory(const Config& config);

}  // namespace tessera
