#include "train/checkpointing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <future>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <thread>

#include "core/error.hpp"
#include "core/json_numbers.hpp"

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

/// The backend's buffers of a chunk's values, first and second moments (the moments of its
/// optimizer's range only).
std::array<float*, 3> backend_arrays(const ModelReplica::ChunkState& chunk) {
  return {chunk.model.parameters().values(), chunk.optimizer.first_moments(),
          chunk.optimizer.second_moments()};
}

/// Collective over `comm`: whether every element of every rank's blocks is finite.
bool finite_on_every_rank(MPI_Comm comm, const std::vector<TensorBlock>& blocks) {
  uint32_t not_finite = 0;  // set by an exponent of all ones: an infinity or a NaN
  for (const TensorBlock& block : blocks) {
    std::size_t count = 1;
    for (const int64_t extent : block.local_shape) count *= static_cast<std::size_t>(extent);
    for (const float value : std::span(block.data, count)) {
      not_finite |=
          static_cast<uint32_t>((std::bit_cast<uint32_t>(value) & 0x7F800000u) == 0x7F800000u);
    }
  }
  int finite = not_finite == 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &finite, 1, MPI_INT, MPI_MIN, comm);
  return finite == 1;
}

/// Throws CheckpointDamaged (so that a resume falls back to the checkpoint before) unless
/// `metadata` gives the step that `candidate`'s file is named after, and its configuration, if
/// any, as text: resuming at another step would repeat or skip steps.
void check_restorable(const nlohmann::json& metadata, const CheckpointDirectory::Entry& candidate) {
  const auto step = metadata.find("step");
  const std::optional<int64_t> number =
      step == metadata.end() ? std::nullopt
                             : whole_number_in(*step, 0, std::numeric_limits<int>::max());
  const std::string file = "checkpoint " + candidate.path.string();
  if (number != candidate.step) {
    // A forged step may be megabytes of text: the message shows its start.
    constexpr std::size_t kShown = 40;
    std::string given = step == metadata.end() ? std::string("none") : step->dump();
    if (given.size() > kShown) given = given.substr(0, kShown) + "...";
    throw CheckpointDamaged(
        fmt::format("{}: its metadata gives step {} where its name gives {}; it is damaged", file,
                    given, candidate.step));
  }
  const auto config = metadata.find("config");
  if (config != metadata.end() && !config->is_string()) {
    throw CheckpointDamaged(file + ": its metadata's configuration is not text; it is damaged");
  }
}

/// The grid a checkpoint's metadata says it was written from; none when it does not say, in
/// whole numbers of a sane size (the file may be damaged or forged).
std::optional<GridShape> written_shape(const nlohmann::json& metadata) {
  const auto layout = metadata.find("layout");
  if (layout == metadata.end() || !layout->is_object()) return std::nullopt;
  std::array<int, 3> sizes{};
  const std::array<const char*, 3> keys{"dp", "tp", "pp"};
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto size = layout->find(keys[i]);
    if (size == layout->end()) return std::nullopt;
    const std::optional<int64_t> number = whole_number_in(*size, 1, 1 << 24);
    if (!number) return std::nullopt;
    sizes[i] = static_cast<int>(*number);
  }
  return GridShape{sizes[0], sizes[1], sizes[2]};
}

}  // namespace

std::filesystem::path checkpoint_directory(const Config& config) {
  return config.checkpoint.dir.empty() ? config.run.dir / "checkpoints"
                                       : std::filesystem::path(config.checkpoint.dir);
}

/// Host copies of each chunk's values, m and v, each laid out like the flat parameter buffer;
/// an array read and written in place (TrainingCheckpoints::in_place) has none.
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
  /// Ready once `state` holds the snapshot (at once where save() copied it).
  std::shared_future<void> snapshot_taken;
};

TrainingCheckpoints::TrainingCheckpoints(const Config& config, ParallelContext& parallel,
                                         ModelReplica& replica, Backend& backend,
                                         const DataLoader& data)
    : config_(config),
      parallel_(parallel),
      replica_(replica),
      backend_(backend),
      tokenizer_id_(data.tokenizer_id()),
      vocab_size_(data.vocab_size()),
      special_tokens_(data.special_tokens()),
      writer_comm_(duplicate(parallel.world_handle())),
      directory_(writer_comm_.handle(), checkpoint_directory(config), config.checkpoint.keep) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  if (config.checkpoint.async && provided < MPI_THREAD_MULTIPLE) {
    throw UsageError(
        "checkpoint.async = true needs an MPI library that offers "
        "MPI_THREAD_MULTIPLE, and this one does not; set checkpoint.async = false");
  }
  // The snapshot's memory is allocated and first touched now, not at the first save, where
  // that (slower than the copy itself) would block training.
  if (config.checkpoint.async) {
    staging_ = std::make_unique<HostState>();
    place(*staging_, /*snapshot=*/true);
  }
}

TrainingCheckpoints::~TrainingCheckpoints() {
  if (pending_ && pending_->writer.joinable()) pending_->writer.join();
}

bool TrainingCheckpoints::in_place(const ModelReplica::ChunkState& chunk, std::size_t array) const {
  // Moments sharded by ZeRO-1 are gathered into a whole-tensor copy first.
  const bool sharded =
      chunk.optimizer.end() - chunk.optimizer.begin() < chunk.model.parameters().padded_count();
  return backend_.host_accessible() && (array == 0 || !sharded);
}

std::vector<std::array<float*, 3>> TrainingCheckpoints::place(HostState& host, bool snapshot) {
  std::vector<std::array<float*, 3>> places;
  const auto chunks = replica_.chunk_states();
  host.chunks.resize(chunks.size());
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    ParameterStore& p = chunks[c].model.parameters();
    const std::array<float*, 3> device = backend_arrays(chunks[c]);
    std::array<float*, 3>& place = places.emplace_back();
    for (std::size_t a = 0; a < 3; ++a) {
      if (!snapshot && in_place(chunks[c], a)) {
        place[a] = device[a];
        continue;
      }
      // Kept from save to save: every element a block names is written before it is read (the
      // padding past the last parameter is in no block), so it needs no clearing.
      std::vector<float>& copy = host.chunks[c][a];
      copy.resize(p.padded_count());
      place[a] = copy.data();
    }
  }
  return places;
}

std::vector<std::array<float*, 3>> TrainingCheckpoints::copy_to_host(HostState& host,
                                                                     bool snapshot) {
  const auto places = place(host, snapshot);
  copy_arrays(places, /*host_copy=*/false);
  return places;
}

void TrainingCheckpoints::copy_arrays(const std::vector<std::array<float*, 3>>& places,
                                      bool host_copy) {
  const auto copy = [&](float* to, const float* from, std::size_t count) {
    if (host_copy) {
      std::copy_n(from, count, to);
    } else {
      backend_.copy_to_host(to, from, count);
    }
  };
  const auto chunks = replica_.chunk_states();
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    const ParameterStore& p = chunks[c].model.parameters();
    const std::size_t begin = chunks[c].optimizer.begin();
    const std::size_t size = chunks[c].optimizer.end() - begin;
    const std::array<float*, 3> device = backend_arrays(chunks[c]);
    for (std::size_t a = 0; a < 3; ++a) {
      if (places[c][a] == device[a]) continue;  // in place
      if (a == 0) {
        copy(places[c][a], device[a], p.padded_count());
        continue;
      }
      copy(places[c][a] + begin, device[a], size);
      // Under ZeRO-1 each dp rank holds 1/dp of the moments: gather them so that every rank can
      // describe whole logical tensors (the file does not depend on the ZeRO setting).
      if (size < p.padded_count()) {
        parallel_.host_dp().all_gather(places[c][a] + begin, places[c][a], size);
      }
    }
  }
}

std::vector<TensorBlock> TrainingCheckpoints::blocks_of(
    const std::vector<std::array<float*, 3>>& places) const {
  const auto& coordinates = parallel_.coordinates();
  std::vector<TensorBlock> blocks;
  std::size_t index = 0;
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    const auto& arrays = places[index++];
    for (const ParameterInfo& info : chunk.model.parameters().infos()) {
      // One rank writes each element: dp replica 0, tp rank 0 for replicated tensors, and the
      // first stage for the embedding the last stage holds a tied copy of.
      const bool tied_copy = !chunk.model.first_stage() && info.name == "embed/tokens/weight";
      const bool writer =
          coordinates.dp == 0 && !tied_copy && (coordinates.tp == 0 || !info.replicated());
      for (std::size_t a = 0; a < 3; ++a) {
        auto block = tensor_block<TensorBlock>(kPrefixes[a], info);
        block.data = arrays[a] + info.offset;
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
          {"model_family", model_family_name(config_.model.family)},
          {"tokenizer", tokenizer_id_},
          {"vocab_size", vocab_size_},
          {"special_tokens", special_tokens_}};
}

std::vector<SaveReport> TrainingCheckpoints::save(int step, bool step_finite) {
  std::vector<SaveReport> done = wait();  // one save in flight at a time
  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point from) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  };
  const bool async = config_.checkpoint.async;
  // A save of a state that is not finite is refused: retention would keep it in place of a good
  // one. An asynchronous save checks its snapshot in the writer thread, off training's path.
  if (!step_finite || (!async && !replica_.state_is_finite())) {
    SaveReport refused;
    refused.step = step;
    refused.not_finite = true;
    done.push_back(refused);
    return done;
  }
  auto pending = std::make_unique<Pending>();
  pending->state = staging_ ? std::move(staging_) : std::make_unique<HostState>();
  const bool copy_in_writer = async && snapshot_in_writer();
  const auto places = copy_in_writer ? place(*pending->state, /*snapshot=*/true)
                                     : copy_to_host(*pending->state, /*snapshot=*/async);
  pending->blocks = blocks_of(places);
  pending->report.step = step;
  pending->report.blocked_s = seconds_since(start);
  std::promise<void> snapshot;
  pending->snapshot_taken = snapshot.get_future().share();
  if (!copy_in_writer) snapshot.set_value();
  auto write = [this, step, start, seconds_since, async, copy_in_writer, places,
                snapshot = std::move(snapshot), job = pending.get(), header = metadata(step),
                manifest = manifest_]() mutable {
    try {
      if (copy_in_writer) {
        std::this_thread::sleep_for(std::chrono::milliseconds(config_.debug.snapshot_delay_ms));
        copy_arrays(places, /*host_copy=*/true);
        snapshot.set_value();
      }
      if (async && !finite_on_every_rank(writer_comm_.handle(), job->blocks)) {
        job->report.not_finite = true;
      } else {
        job->report.bytes =
            std::filesystem::file_size(directory_.save(step, job->blocks, header, manifest));
      }
    } catch (...) {
      job->failure = std::current_exception();
      if (copy_in_writer) snapshot = {};  // a waiter gets broken_promise, not a hang
    }
    job->report.write_s = seconds_since(start);
  };
  if (!async) {
    write();
    pending->report.blocked_s = pending->report.write_s;
    staging_ = std::move(pending->state);
    if (pending->failure) std::rethrow_exception(pending->failure);
    done.push_back(pending->report);
    return done;
  }
  pending->writer = std::thread(std::move(write));
  pending_ = std::move(pending);
  return done;
}

void TrainingCheckpoints::before_update() {
  if (!pending_) return;
  const auto start = std::chrono::steady_clock::now();
  try {
    pending_->snapshot_taken.get();
  } catch (const std::future_error&) {
    // The writer failed before the copy; wait() rethrows why.
  }
  pending_->report.blocked_s +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool TrainingCheckpoints::snapshot_in_writer() const {
  if (!backend_.host_accessible()) return false;
  for (const ModelReplica::ChunkState& chunk : replica_.chunk_states()) {
    if (!in_place(chunk, 1)) return false;  // ZeRO shards
  }
  return true;
}

std::vector<SaveReport> TrainingCheckpoints::wait() {
  if (!pending_) return {};
  std::unique_ptr<Pending> finished = std::move(pending_);
  finished->writer.join();
  staging_ = std::move(finished->state);
  if (finished->failure) std::rethrow_exception(finished->failure);
  return {finished->report};
}

int TrainingCheckpoints::restore(const std::function<void(const std::string&)>& warn) {
  if (directory_.list().empty()) return 0;  // a new run: nothing to place
  std::unique_ptr<HostState> host = staging_ ? std::move(staging_) : std::make_unique<HostState>();
  const auto places = place(*host, /*snapshot=*/false);
  std::vector<TensorReadRequest> requests;
  std::size_t index = 0;
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    const auto& arrays = places[index++];
    for (const ParameterInfo& info : chunk.model.parameters().infos()) {
      for (std::size_t a = 0; a < 3; ++a) {
        auto request = tensor_block<TensorReadRequest>(kPrefixes[a], info);
        request.data = arrays[a] + info.offset;
        requests.push_back(std::move(request));
      }
    }
  }
  // The file is read once: read_checkpoint verifies the checksums of what it reads, and a
  // damaged file gives way to the previous one.
  nlohmann::json metadata;
  bool read_into_the_state = false;
  const std::optional<CheckpointDirectory::Entry> entry = directory_.load_latest(
      [&](const CheckpointDirectory::Entry& candidate) {
        metadata = read_checkpoint_metadata(parallel_.world_handle(), candidate.path);
        check_restorable(metadata, candidate);
        read_into_the_state = true;
        read_checkpoint(parallel_.world_handle(), candidate.path, requests);
      },
      warn);
  staging_ = std::move(host);
  if (!entry) {
    // Every checkpoint was damaged: the run starts afresh, from the state a failed in-place
    // read may have overwritten.
    if (read_into_the_state) start_afresh();
    return 0;
  }
  restored_bytes_ = std::filesystem::file_size(entry->path);
  restored_config_ = metadata.value("config", std::string());
  restored_shape_ = written_shape(metadata);
  index = 0;
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    ParameterStore& p = chunk.model.parameters();
    const auto& arrays = places[index++];
    const std::size_t begin = chunk.optimizer.begin(), size = chunk.optimizer.end() - begin;
    const std::array<float*, 3> device = backend_arrays(chunk);
    for (std::size_t a = 0; a < 3; ++a) {
      if (arrays[a] == device[a]) continue;  // read in place
      if (a == 0) {
        backend_.copy_from_host(device[a], arrays[a], p.padded_count());
      } else {
        backend_.copy_from_host(device[a], arrays[a] + begin, size);
      }
    }
  }
  return static_cast<int>(entry->step);
}

void TrainingCheckpoints::start_afresh() {
  replica_.initialize(config_.train.seed);
  for (ModelReplica::ChunkState chunk : replica_.chunk_states()) {
    const std::size_t size = chunk.optimizer.end() - chunk.optimizer.begin();
    backend_.fill_zero(chunk.optimizer.first_moments(), size);
    backend_.fill_zero(chunk.optimizer.second_moments(), size);
  }
}

}  // namespace tessera
