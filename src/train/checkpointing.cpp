#include "train/checkpointing.hpp"

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace tessera {
namespace {

/// The tensor a ParameterInfo describes, under a dataset prefix.
template <class Block>
Block tensor_block(const std::string& prefix, const ParameterInfo& info) {
  Block block;
  block.name = prefix + info.name;
  block.global_shape = info.global_shape;
  block.local_shape = info.local_shape;
  block.global_offset = info.global_offset;
  return block;
}

const char* const kPrefixes[] = {"model/", "optimizer/m/", "optimizer/v/"};

}  // namespace

std::filesystem::path checkpoint_directory(const Config& config) {
  return config.checkpoint.dir.empty() ? config.run.dir / "checkpoints"
                                       : std::filesystem::path(config.checkpoint.dir);
}

/// values, m and v of each chunk on the host, each laid out like the flat parameter buffer.
struct TrainingCheckpoints::HostState {
  std::vector<std::array<std::vector<float>, 3>> chunks;
};

/// An asynchronous save in flight: the state it writes and the thread writing it.
struct TrainingCheckpoints::Pending {
  std::unique_ptr<HostState> state;
  std::vector<TensorBlock> blocks;
  SaveReport report;
  std::exception_ptr failure;
  std::thread writer;
};

TrainingCheckpoints::TrainingCheckpoints(const Config& config, ParallelContext& parallel,
                                         ModelReplica& replica, Backend& backend,
                                         std::string tokenizer_id)
    : config_(config),
      parallel_(parallel),
      replica_(replica),
      backend_(backend),
      tokenizer_id_(std::move(tokenizer_id)),
      writer_comm_(duplicate(parallel.world_handle())),
      directory_(writer_comm_.handle(), checkpoint_directory(config), config.checkpoint.keep) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  if (config.checkpoint.async && provided < MPI_THREAD_MULTIPLE) {
    throw UsageError(
        "checkpoint.async = true needs an MPI library that offers "
        "MPI_THREAD_MULTIPLE, and this one does not; set checkpoint.async = false");
  }
}

TrainingCheckpoints::~TrainingCheckpoints() {
  if (pending_ && pending_->writer.joinable()) pending_->writer.join();
}

std::unique_ptr<TrainingCheckpoints::HostState> TrainingCheckpoints::gather_state() {
  auto state = std::make_unique<HostState>();
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    const ParameterStore& p = chunk.model.parameters();
    std::array<std::vector<float>, 3> host;
    host[0].resize(p.padded_count());
    backend_.copy_to_host(host[0].data(), p.values(), p.padded_count());
    const std::size_t begin = chunk.optimizer.begin(), size = chunk.optimizer.end() - begin;
    for (int moment = 1; moment <= 2; ++moment) {
      float* device =
          moment == 1 ? chunk.optimizer.first_moments() : chunk.optimizer.second_moments();
      std::vector<float>& full = host[static_cast<std::size_t>(moment)];
      full.assign(p.padded_count(), 0.0f);
      backend_.copy_to_host(full.data() + begin, device, size);
      // Under ZeRO-1 each dp rank holds 1/dp of the moments: gather them so that every rank can
      // describe whole logical tensors (the file does not depend on the ZeRO setting).
      if (size < p.padded_count())
        parallel_.host_dp().all_gather(full.data() + begin, full.data(), size);
    }
    state->chunks.push_back(std::move(host));
  }
  return state;
}

std::vector<TensorBlock> TrainingCheckpoints::blocks_of(const HostState& state) const {
  const auto& coordinates = parallel_.coordinates();
  std::vector<TensorBlock> blocks;
  std::size_t index = 0;
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    const auto& arrays = state.chunks[index++];
    for (const ParameterInfo& info : chunk.model.parameters().infos()) {
      // One rank writes each element: dp replica 0, tp rank 0 for replicated tensors, and the
      // first stage for the embedding the last stage holds a tied copy of.
      const bool tied_copy = !chunk.model.first_stage() && info.name == "embed/tokens/weight";
      const bool writer =
          coordinates.dp == 0 && !tied_copy && (coordinates.tp == 0 || !info.replicated());
      for (std::size_t a = 0; a < 3; ++a) {
        auto block = tensor_block<TensorBlock>(kPrefixes[a], info);
        block.data = arrays[a].data() + info.offset;
        block.writer = writer;
        blocks.push_back(std::move(block));
      }
    }
  }
  return blocks;
}

nlohmann::json TrainingCheckpoints::metadata(int step) const {
  return {{"step", step},
          {"samples_consumed", static_cast<int64_t>(step) * config_.train.global_batch},
          {"config", to_toml(config_)},
          {"layout",
           {{"dp", parallel_.shape().dp},
            {"tp", parallel_.shape().tp},
            {"pp", parallel_.shape().pp},
            {"zero", config_.parallel.zero}}},
          {"model_family", config_.model.family == ModelFamily::gpt2 ? "gpt2" : "openlm"},
          {"tokenizer", tokenizer_id_}};
}

std::vector<SaveReport> TrainingCheckpoints::save(int step, bool step_finite) {
  std::vector<SaveReport> done = wait();  // one save in flight at a time
  if (!step_finite || !replica_.state_is_finite()) {
    SaveReport refused;
    refused.step = step;
    refused.not_finite = true;
    done.push_back(refused);
    return done;
  }
  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point from) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  };
  auto pending = std::make_unique<Pending>();
  pending->state = gather_state();
  pending->blocks = blocks_of(*pending->state);
  pending->report.step = step;
  pending->report.blocked_s = seconds_since(start);
  auto write = [this, step, start, seconds_since, job = pending.get(), header = metadata(step),
                manifest = manifest_] {
    try {
      job->report.bytes =
          std::filesystem::file_size(directory_.save(step, job->blocks, header, manifest));
    } catch (...) {
      job->failure = std::current_exception();
    }
    job->report.write_s = seconds_since(start);
  };
  if (!config_.checkpoint.async) {
    write();
    pending->report.blocked_s = pending->report.write_s;
    if (pending->failure) std::rethrow_exception(pending->failure);
    done.push_back(pending->report);
    return done;
  }
  pending->writer = std::thread(write);
  pending_ = std::move(pending);
  return done;
}

std::vector<SaveReport> TrainingCheckpoints::wait() {
  if (!pending_) return {};
  std::unique_ptr<Pending> finished = std::move(pending_);
  finished->writer.join();
  if (finished->failure) std::rethrow_exception(finished->failure);
  return {finished->report};
}

int TrainingCheckpoints::restore(const std::function<void(const std::string&)>& warn) {
  if (directory_.list().empty()) return 0;  // a new run: no host copy of the state to make
  std::vector<std::array<std::vector<float>, 3>> host;
  std::vector<TensorReadRequest> requests;
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    const ParameterStore& p = chunk.model.parameters();
    auto& arrays = host.emplace_back();
    for (auto& array : arrays) array.assign(p.padded_count(), 0.0f);
    for (const ParameterInfo& info : p.infos()) {
      for (std::size_t a = 0; a < 3; ++a) {
        auto request = tensor_block<TensorReadRequest>(kPrefixes[a], info);
        request.data = arrays[a].data() + info.offset;
        requests.push_back(std::move(request));
      }
    }
  }
  // The file is read once: read_checkpoint verifies the checksums of what it reads, and a
  // damaged file gives way to the previous one.
  nlohmann::json metadata;
  const std::optional<CheckpointDirectory::Entry> entry = directory_.load_latest(
      [&](const CheckpointDirectory::Entry& candidate) {
        metadata = read_checkpoint_metadata(parallel_.world_handle(), candidate.path);
        read_checkpoint(parallel_.world_handle(), candidate.path, requests);
      },
      warn);
  if (!entry) return 0;
  restored_bytes_ = std::filesystem::file_size(entry->path);
  restored_config_ = metadata.value("config", std::string());
  std::size_t index = 0;
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    ParameterStore& p = chunk.model.parameters();
    const auto& arrays = host[index++];
    backend_.copy_from_host(p.values(), arrays[0].data(), p.padded_count());
    const std::size_t begin = chunk.optimizer.begin(), size = chunk.optimizer.end() - begin;
    backend_.copy_from_host(chunk.optimizer.first_moments(), arrays[1].data() + begin, size);
    backend_.copy_from_host(chunk.optimizer.second_moments(), arrays[2].data() + begin, size);
  }
  return metadata.at("step").get<int>();
}

}  // namespace tessera
