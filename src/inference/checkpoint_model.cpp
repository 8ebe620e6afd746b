#include "inference/checkpoint_model.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <optional>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/data/recorded_tokenizer.hpp"
#include "io/data/tokenizer_spec.hpp"
#include "train/backend_choice.hpp"
#include "train/model_replica.hpp"

namespace tessera {
namespace {

/// The configuration a checkpoint was saved under (its metadata's "config").
Config saved_configuration(const nlohmann::json& metadata, const std::filesystem::path& file) {
  if (!metadata.contains("config") || !metadata["config"].is_string()) {
    throw UsageError(file.string() +
                     " has no configuration in its metadata; is it a tessera checkpoint?");
  }
  return parse_config(metadata["config"].get<std::string>(), {});
}

/// The saved configuration run the way `overrides` say, on `world_size` ranks.
Config run_configuration(const Config& saved, const std::vector<std::string>& overrides,
                         int world_size) {
  Config base = saved;
  base.parallel = ParallelConfig{};  // the training layout need not fit this job
  Config config = parse_config(to_toml(base), overrides);
  if (!(config.model == saved.model)) {
    throw UsageError(
        "--set may say how the model runs (parallel.*, train.micro_batch, train.backend, "
        "train.precision), not change it: model.* comes from the checkpoint");
  }
  config.model.z_loss = 0.0f;  // a training regulariser, not part of the likelihood
  // Any dp the ranks allow divides a batch of one microbatch per rank.
  config.train.global_batch = config.train.micro_batch * world_size;
  return config;
}

/// The metadata of the checkpoint `path` names: the file, or the newest of a directory whose
/// structure is sound (its data is checked as it is read).
nlohmann::json newest_metadata(MPI_Comm world, const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error)) return read_checkpoint_metadata(world, path);
  if (!std::filesystem::is_directory(path, error)) {
    throw UsageError("checkpoint " + path.string() +
                     " not found; pass a step_*.h5 file or a checkpoint directory");
  }
  nlohmann::json metadata;
  const CheckpointDirectory directory(world, path, 1);
  const auto read_metadata = [&](const CheckpointDirectory::Entry& candidate) {
    metadata = read_checkpoint_metadata(world, candidate.path);
  };
  if (!directory.load_latest(read_metadata)) {
    throw UsageError(path.string() +
                     " holds no intact checkpoint (step_*.h5); pass the checkpoint.dir of a run "
                     "that saved one");
  }
  return metadata;
}

}  // namespace

CheckpointModel::CheckpointModel(const CheckpointModelOptions& options,
                                 const std::function<void(const std::string&)>& warn) {
  int world_size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const Config saved =
      saved_configuration(newest_metadata(MPI_COMM_WORLD, options.checkpoint), options.checkpoint);
  config_ = run_configuration(saved, options.overrides, world_size);
  if (options.one_replica) config_.parallel.sequence_parallel = false;
  layout_ = resolve_layout(config_, world_size);
  if (options.one_replica && layout_.shape.dp != 1) {
    throw UsageError(fmt::format(
        "generation runs one model replica, and {} ranks at parallel.tp = {}, parallel.pp = {} "
        "make {}; start tp x pp = {} ranks",
        world_size, layout_.shape.tp, layout_.shape.pp, layout_.shape.dp,
        layout_.shape.tp * layout_.shape.pp));
  }
  parallel_ = std::make_unique<ParallelContext>(MPI_COMM_WORLD, layout_.shape, layout_.order);
  backend_ = make_training_backend(config_, *parallel_);
  for (const StageChunk& chunk : chunks_of(layout_, parallel_->coordinates().pp)) {
    chunks_.push_back(std::make_unique<Transformer>(
        config_.model, *backend_, chunk_partition(config_, layout_, chunk, *parallel_)));
  }
  executor_ = std::make_unique<PipelineExecutor>(
      chunks(), &parallel_->pp(), parallel_->coordinates().pp, layout_.shape.pp, *backend_);
  load(options.checkpoint, saved.model, warn);
}

void CheckpointModel::load(const std::filesystem::path& path, const ModelConfig& model,
                           const std::function<void(const std::string&)>& warn) {
  const MPI_Comm world = parallel_->world_handle();
  const auto read = [&](const std::filesystem::path& file) {
    nlohmann::json metadata = read_checkpoint_metadata(world, file);
    if (!(saved_configuration(metadata, file).model == model)) {
      throw UsageError(file.string() + " holds another model than the newest checkpoint beside " +
                       "it; pass the file to use");
    }
    read_parameters(file);
    metadata_ = std::move(metadata);
    file_ = file;
  };
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error)) return read(path);
  // A candidate whose data fails its checksums gives way to the one before it.
  const CheckpointDirectory directory(world, path, 1);
  const auto read_candidate = [&](const CheckpointDirectory::Entry& entry) { read(entry.path); };
  if (!directory.load_latest(read_candidate, warn)) {
    throw UsageError(path.string() + " holds no intact checkpoint (step_*.h5)");
  }
}

CheckpointModel::~CheckpointModel() = default;

std::vector<Transformer*> CheckpointModel::chunks() {
  std::vector<Transformer*> models;
  for (auto& chunk : chunks_) models.push_back(chunk.get());
  return models;
}

bool CheckpointModel::loss_holder() const {
  return parallel_->coordinates().pp == layout_.shape.pp - 1 && parallel_->coordinates().tp == 0;
}

std::unique_ptr<Tokenizer> CheckpointModel::open_tokenizer(
    const std::filesystem::path& given) const {
  const std::string id = metadata_.value("tokenizer", std::string());
  return tessera::open_tokenizer(find_recorded_tokenizer(id, config_.data, given));
}

ReplicaShare CheckpointModel::share_of(int64_t microbatches) const {
  return replica_share(microbatches, layout_.shape.dp, parallel_->coordinates().dp);
}

void CheckpointModel::forward(const ReplicaShare& share, const FillTokens& fill,
                              const ScoreLosses& score, const WorkProgress& progress) {
  const int batch = config_.train.micro_batch;
  const std::size_t count = static_cast<std::size_t>(batch) * config_.model.seq_len;
  std::vector<int32_t> inputs(count), targets(count);
  int64_t held = -1;  // the global microbatch in the buffers (every chunk asks for its tokens)
  executor_->run_forward(
      static_cast<int>(share.size()), batch,
      [&](int m) {
        if (share.begin + m != held) {
          if (progress) progress(m, share.size());
          held = share.begin + m;
          fill(held, inputs.data(), targets.data());
        }
        return MicrobatchTokens{inputs.data(), targets.data()};
      },
      [&](int m, std::span<const float> losses) { score(share.begin + m, losses); });
  executor_->take_timings();
  if (progress) progress(share.size(), share.size());
}

void CheckpointModel::read_parameters(const std::filesystem::path& file) {
  // Into the backend's buffers where they are host memory, else through host copies.
  const bool in_place = backend_->host_accessible();
  std::vector<std::vector<float>> host(chunks_.size());
  std::vector<TensorReadRequest> requests;
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    ParameterStore& parameters = chunks_[c]->parameters();
    if (!in_place) host[c].resize(parameters.padded_count());
    float* values = in_place ? parameters.values() : host[c].data();
    for (const ParameterInfo& info : parameters.infos()) {
      TensorReadRequest request;
      request.name = "model/" + info.name;
      request.global_shape = info.global_shape;
      request.local_shape = info.local_shape;
      request.global_offset = info.global_offset;
      request.data = values + info.offset;
      requests.push_back(std::move(request));
    }
  }
  read_checkpoint(parallel_->world_handle(), file, requests);
  if (in_place) return;
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    backend_->copy_from_host(chunks_[c]->parameters().values(), host[c].data(), host[c].size());
  }
}

}  // namespace tessera
