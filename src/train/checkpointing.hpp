// Saving and resuming a training run through checkpoint files of logical tensors
// (io/checkpoint): parameters under model/<name>, AdamW moments under optimizer/m/<name> and
// optimizer/v/<name>, each with its global shape, each rank writing and reading the block it
// holds. A run can therefore resume at any (dp, tp, pp) layout and ZeRO setting.
//
// A backend whose buffers are host memory (backend.host_accessible) is written from and read
// into in place; otherwise (a GPU, or moments sharded by ZeRO-1) through a host copy that is
// kept from save to save. With checkpoint.async the state is copied to host memory at the step
// boundary (the only part training waits for), then checked for non-finite values and written
// by a background thread over a duplicate of the world communicator, so that its collectives
// never mix with the training's. Where the state is host memory and whole on each rank, the
// background thread takes the copy itself while the next step's forward and backward run, and
// the next optimizer update waits for it (before_update).
#pragma once

#include <array>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "backend/backend.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "io/data/data_loader.hpp"
#include "parallel/mpi_communicator.hpp"
#include "parallel/parallel_context.hpp"
#include "train/model_replica.hpp"

namespace tessera {

/// What a finished save reports.
struct SaveReport {
  int step = 0;
  double blocked_s = 0.0;  ///< training waited this long (copy to host; all of it when sync)
  double write_s = 0.0;    ///< from the copy to the file being complete and renamed
  std::uintmax_t bytes = 0;
  /// Nothing was written: the step's loss or gradient norm, or the parameters or optimizer state,
  /// were not finite, and a checkpoint of them would replace (by checkpoint.keep, delete) good
  /// ones.
  bool not_finite = false;
};

class TrainingCheckpoints {
 public:
  /// The data's tokenizer (id, vocabulary size, special tokens) is recorded in every file.
  TrainingCheckpoints(const Config& config, ParallelContext& parallel, ModelReplica& replica,
                      Backend& backend, const DataLoader& data);
  ~TrainingCheckpoints();  ///< waits for a save in flight

  /// Loads the newest valid checkpoint in checkpoint.dir into the replica (falling back to an
  /// older one, with a warning, when the newest is damaged). Returns the step it was written
  /// after, or 0 when there is none. Collective.
  int restore(const std::function<void(const std::string&)>& warn);
  /// Size of the file restore() read, in bytes.
  std::uintmax_t restored_bytes() const { return restored_bytes_; }
  /// The configuration (TOML) the restored checkpoint was saved under; "" before a restore.
  const std::string& restored_config() const { return restored_config_; }
  /// The grid the restored checkpoint was written from; none before a restore (or in a file
  /// that does not say).
  const std::optional<GridShape>& restored_shape() const { return restored_shape_; }

  /// Saves the state after step `step`: synchronously, or (checkpoint.async) copies it and
  /// returns while a background thread writes it. Collective. Returns the reports of the saves
  /// completed by now (the previous asynchronous one, or this synchronous one). Weights whose
  /// last step gave a non-finite loss or gradient norm (`step_finite` false), or a state that is
  /// not finite everywhere, are not saved (a report with not_finite): retention would keep such a
  /// file in place of a good one.
  std::vector<SaveReport> save(int step, bool step_finite);
  /// Waits for an asynchronous save in flight; returns its report (if there was one) and
  /// rethrows what it failed with.
  std::vector<SaveReport> wait();
  /// To be called before each optimizer update: waits until an asynchronous save in flight has
  /// its snapshot of the state, which its writer thread copies (where the backend's buffers are
  /// host memory) while the next step's forward and backward run; the wait counts as blocked.
  void before_update();
  /// The run manifest JSON (rank 0's copy counts) that every later save stores in its file.
  void set_manifest(std::string manifest) { manifest_ = std::move(manifest); }

 private:
  struct HostState;
  struct Pending;
  /// Whether array `array` of `chunk` (0 the values, 1 and 2 the moments) is written and read
  /// in place: the backend's buffers are host memory and the moments are not ZeRO shards.
  bool in_place(const ModelReplica::ChunkState& chunk, std::size_t array) const;
  /// The host address of each chunk's values, m and v for a save or a restore: the backend's
  /// buffer where in_place (unless a `snapshot` is wanted), else `host`'s copy (sized here).
  std::vector<std::array<float*, 3>> place(HostState& host, bool snapshot);
  /// place(), then copy_arrays() through the backend.
  std::vector<std::array<float*, 3>> copy_to_host(HostState& host, bool snapshot);
  /// Copies every array that `places` does not hold in place from the backend's buffers: the
  /// values whole, the moments of this rank's optimizer range (gathering ZeRO-1 shards).
  /// `host_copy` copies with std::copy_n instead of the backend, as the writer thread does for
  /// snapshot_in_writer's host memory (which has no shards).
  void copy_arrays(const std::vector<std::array<float*, 3>>& places, bool host_copy);
  /// Whether an asynchronous save's writer thread can take the snapshot itself: every array is
  /// host memory and whole on this rank (no ZeRO shards, whose gathering is collective).
  bool snapshot_in_writer() const;
  std::vector<TensorBlock> blocks_of(const std::vector<std::array<float*, 3>>& places) const;
  /// The freshly initialized state (after a read in place that found every file damaged).
  void start_afresh();
  nlohmann::json metadata(int step) const;

  const Config& config_;
  ParallelContext& parallel_;
  ModelReplica& replica_;
  Backend& backend_;
  std::string tokenizer_id_;
  int vocab_size_;
  std::map<std::string, int32_t> special_tokens_;
  MpiCommunicator writer_comm_;  // the background writer's own duplicate of the world
  CheckpointDirectory directory_;
  std::uintmax_t restored_bytes_ = 0;
  std::string restored_config_;
  std::optional<GridShape> restored_shape_;
  std::unique_ptr<Pending> pending_;
  /// The host copy of the state, kept from save to save: allocating and first touching it
  /// costs more than the copy itself (doc/checkpoints.md, "Costs").
  std::unique_ptr<HostState> staging_;
  std::string manifest_;
};

/// checkpoint.dir, or <run.dir>/checkpoints when it is empty.
std::filesystem::path checkpoint_directory(const Config& config);

}  // namespace tessera
