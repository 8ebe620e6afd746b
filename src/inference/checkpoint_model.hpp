// A checkpoint's model, loaded for forward passes (evaluation, generation) at whatever layout
// the job asks for: every rank builds its chunks of the model (dp x tp x pp, as training
// would) and reads its blocks of the logical tensors, so a model saved at one layout runs at
// any other. No gradients, optimizer state or training data are allocated.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "io/config/config.hpp"
#include "io/data/tokenizer.hpp"
#include "model/transformer.hpp"
#include "parallel/layout/training_layout.hpp"
#include "parallel/parallel_context.hpp"
#include "train/pipeline_executor.hpp"
#include "train/step_accounting.hpp"

namespace tessera {

/// Called now and then with the microbatches this rank has done of those it runs.
using WorkProgress = std::function<void(int64_t done, int64_t total)>;

struct CheckpointModelOptions {
  /// A step_*.h5 file, or a checkpoint directory (its newest intact checkpoint).
  std::filesystem::path checkpoint;
  /// --set SECTION.KEY=VALUE: how the model runs (parallel.*, train.micro_batch,
  /// train.backend, train.precision); the model itself comes from the checkpoint. parallel.*
  /// start from their defaults (tp = pp = 1, dp = every rank), not from the training layout.
  std::vector<std::string> overrides;
  /// Generation: one model replica (every rank in tp x pp; UsageError otherwise), without
  /// sequence parallelism (a decoding step may be one row).
  bool one_replica = false;
};

class CheckpointModel {
 public:
  /// Collective over MPI_COMM_WORLD. `warn` hears (on every rank, the same text) about a damaged
  /// newest checkpoint passed over for an older one. UsageError when the path is not a
  /// checkpoint, holds none intact, the layout does not fit the model, or --set changes model.*.
  CheckpointModel(const CheckpointModelOptions& options,
                  const std::function<void(const std::string&)>& warn);
  ~CheckpointModel();

  /// The checkpoint's configuration with the options' settings; model.z_loss is 0, so losses
  /// are the cross-entropy alone (negative log-likelihoods).
  const Config& config() const { return config_; }
  const nlohmann::json& metadata() const { return metadata_; }
  const std::filesystem::path& file() const { return file_; }
  int step() const { return metadata_.value("step", 0); }
  const TrainingLayout& layout() const { return layout_; }
  ParallelContext& parallel() { return *parallel_; }
  Backend& backend() { return *backend_; }
  std::vector<Transformer*> chunks();
  PipelineExecutor& executor() { return *executor_; }
  /// The tokenizer the model was trained with, found by the id its checkpoint records (`given`
  /// when not empty, else where the run's data settings say; find_recorded_tokenizer).
  std::unique_ptr<Tokenizer> open_tokenizer(const std::filesystem::path& given) const;
  /// Whether this rank holds its replica's per-token losses: the last pipeline stage, tp rank 0.
  bool loss_holder() const;

  /// This rank's replica's share of `microbatches` (replica_share over dp): each microbatch is
  /// computed by one replica.
  ReplicaShare share_of(int64_t microbatches) const;
  /// Writes global microbatch `g`'s host tokens, inputs and targets [micro_batch, seq_len] each.
  using FillTokens = std::function<void(int64_t g, int32_t* inputs, int32_t* targets)>;
  /// Receives global microbatch `g`'s per-token losses (on the loss holder only).
  using ScoreLosses = std::function<void(int64_t g, std::span<const float> losses)>;
  /// Forward passes of the microbatches of `share` (of train.micro_batch sequences each), the
  /// tokens from `fill` (once per microbatch), the losses to `score`; `progress` hears how many
  /// are done. Collective over the replica.
  void forward(const ReplicaShare& share, const FillTokens& fill, const ScoreLosses& score,
               const WorkProgress& progress);

 private:
  /// Reads the parameters from `path` (a file, or a directory's newest intact checkpoint of
  /// `model`) into the chunks, and its metadata.
  void load(const std::filesystem::path& path, const ModelConfig& model,
            const std::function<void(const std::string&)>& warn);
  void read_parameters(const std::filesystem::path& file);

  nlohmann::json metadata_;
  std::filesystem::path file_;
  Config config_;
  TrainingLayout layout_;
  std::unique_ptr<ParallelContext> parallel_;
  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<Transformer>> chunks_;
  std::unique_ptr<PipelineExecutor> executor_;
};

}  // namespace tessera
