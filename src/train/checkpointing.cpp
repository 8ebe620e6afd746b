#include "train/checkpointing.hpp"

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

TrainingCheckpoints::TrainingCheckpoints(const Config& config, ParallelContext& parallel,
                                         ModelReplica& replica, Backend& backend)
    : config_(config),
      parallel_(parallel),
      replica_(replica),
      backend_(backend),
      directory_(parallel.world_handle(), checkpoint_directory(config), config.checkpoint.keep) {}

TrainingCheckpoints::HostState TrainingCheckpoints::gather_state() {
  HostState state;
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
        parallel_.dp().all_gather(full.data() + begin, full.data(), size);
    }
    state.chunks.push_back(std::move(host));
  }
  return state;
}

void TrainingCheckpoints::save(int step) {
  const HostState state = gather_state();
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
  const nlohmann::json metadata = {
      {"step", step},
      {"samples_consumed", static_cast<int64_t>(step) * config_.train.global_batch},
      {"config", to_toml(config_)},
      {"layout",
       {{"dp", parallel_.shape().dp},
        {"tp", parallel_.shape().tp},
        {"pp", parallel_.shape().pp},
        {"zero", config_.parallel.zero}}},
      {"model_family", config_.model.family == ModelFamily::gpt2 ? "gpt2" : "openlm"},
      {"tokenizer", config_.data.tokenizer}};
  last_file_bytes_ = std::filesystem::file_size(directory_.save(step, blocks, metadata));
}

int TrainingCheckpoints::restore(const std::function<void(const std::string&)>& warn) {
  const std::optional<CheckpointDirectory::Entry> entry = directory_.latest_valid(warn);
  if (!entry) return 0;
  const nlohmann::json metadata = read_checkpoint_metadata(parallel_.world_handle(), entry->path);
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
  read_checkpoint(parallel_.world_handle(), entry->path, requests);
  last_file_bytes_ = std::filesystem::file_size(entry->path);
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
