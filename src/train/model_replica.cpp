#include "train/model_replica.hpp"

#include <cmath>
#include <limits>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "train/step_timer.hpp"

namespace tessera {

struct ModelReplica::Chunk {
  std::unique_ptr<Transformer> model;
  std::unique_ptr<BucketedGradientReduction> buckets;  // overlapped dp all-reduce
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<BufferPool> pool;
  std::vector<float*> captured;  // deterministic mode: each microbatch's gradients
  float* shard = nullptr;        // ZeRO-1: this rank's reduced gradient shard
  float* tied_peer = nullptr;    // the other stage's tied-embedding gradient

  ParameterStore& parameters() { return model->parameters(); }
};

ModelPartition chunk_partition(const Config& config, const TrainingLayout& layout,
                               const StageChunk& chunk, ParallelContext& parallel) {
  ModelPartition partition;
  partition.first_layer = chunk.first_layer;
  partition.end_layer = chunk.end_layer;
  partition.tp_rank = parallel.coordinates().tp;
  partition.tp_size = parallel.shape().tp;
  partition.tp = &parallel.tp();
  partition.buffer_multiple =
      config.parallel.zero == 1 ? static_cast<std::size_t>(parallel.shape().dp) : 1;
  partition.sequence_parallel = layout.sequence_parallel;
  partition.recompute = config.train.recompute;
  return partition;
}

ModelReplica::ModelReplica(const Config& config, const TrainingLayout& layout, Backend& backend,
                           ParallelContext& parallel)
    : config_(config), backend_(backend), parallel_(parallel) {
  const int dp = parallel_.shape().dp, dp_rank = parallel_.coordinates().dp;
  const bool zero = config_.parallel.zero == 1;
  for (const StageChunk& stage_chunk : chunks_of(layout, parallel_.coordinates().pp)) {
    auto chunk = std::make_unique<Chunk>();
    chunk->model = std::make_unique<Transformer>(
        config_.model, backend_, chunk_partition(config_, layout, stage_chunk, parallel_));
    chunk->pool = std::make_unique<BufferPool>(backend_);
    ParameterStore& p = chunk->parameters();
    if (zero) {
      const std::size_t shard = p.padded_count() / static_cast<std::size_t>(dp);
      const std::size_t begin = shard * static_cast<std::size_t>(dp_rank);
      chunk->optimizer = std::make_unique<AdamW>(config_.train, p, backend_, begin, begin + shard);
      chunk->shard = chunk->pool->take(shard);
    } else {
      chunk->optimizer = std::make_unique<AdamW>(config_.train, p, backend_);
      if (dp > 1 && !config_.parallel.deterministic) {
        chunk->buckets = std::make_unique<BucketedGradientReduction>(p, parallel_.dp(),
                                                                     config_.parallel.bucket_mb);
      }
    }
    chunks_.push_back(std::move(chunk));
  }
}

ModelReplica::~ModelReplica() = default;

std::vector<Transformer*> ModelReplica::chunks() {
  std::vector<Transformer*> models;
  for (auto& chunk : chunks_) models.push_back(chunk->model.get());
  return models;
}

std::vector<ModelReplica::ChunkState> ModelReplica::chunk_states() {
  std::vector<ChunkState> states;
  for (auto& chunk : chunks_) states.push_back({*chunk->model, *chunk->optimizer});
  return states;
}

void ModelReplica::initialize(uint64_t seed) {
  for (auto& chunk : chunks_) chunk->parameters().initialize(seed);
}

void ModelReplica::zero_gradients() {
  for (auto& chunk : chunks_) chunk->parameters().zero_gradients();
}

PipelineExecutor::StepHooks ModelReplica::step_hooks() {
  PipelineExecutor::StepHooks hooks;
  if (config_.parallel.deterministic) {
    // Keep each microbatch's gradients apart; they are summed in global microbatch order.
    hooks.after_backward = [this](int c, int microbatch) {
      Chunk& chunk = *chunks_[static_cast<std::size_t>(c)];
      ParameterStore& p = chunk.parameters();
      auto index = static_cast<std::size_t>(microbatch);
      if (chunk.captured.size() <= index) chunk.captured.resize(index + 1, nullptr);
      if (chunk.captured[index] == nullptr)
        chunk.captured[index] = chunk.pool->take(p.padded_count());
      backend_.copy_device(chunk.captured[index], p.gradients(), p.padded_count());
      p.zero_gradients();
    };
  } else if (chunks_.front()->buckets) {
    hooks.final_backward = [this](int c) {
      return &chunks_[static_cast<std::size_t>(c)]->buckets->hook();
    };
  }
  return hooks;
}

void ModelReplica::fold_captured_gradients_in_order() {
  // Global microbatch g = dp_rank * m + j. The sum ((g_0 + g_1) + g_2) + ... is carried from
  // rank to rank in that order, so it is the same float sum as one rank accumulating all of
  // them, whatever dp is; the last rank then broadcasts it.
  Communicator& dp = parallel_.dp();
  for (auto& chunk : chunks_) {
    ParameterStore& p = chunk->parameters();
    const std::size_t count = p.padded_count();
    float* sum = p.gradients();
    std::size_t next = 0;
    if (dp.rank() == 0) {
      backend_.copy_device(sum, chunk->captured.at(0), count);
      next = 1;
    } else {
      dp.recv(sum, count, dp.rank() - 1);
    }
    for (; next < chunk->captured.size(); ++next)
      backend_.accumulate(sum, chunk->captured[next], count);
    if (dp.rank() + 1 < dp.size()) dp.send(sum, count, dp.rank() + 1);
    dp.broadcast(sum, count, dp.size() - 1);
  }
}

void ModelReplica::exchange_tied_embedding_gradients() {
  const int stages = parallel_.shape().pp, stage = parallel_.coordinates().pp;
  if (!config_.model.tied_embeddings() || stages * static_cast<int>(chunks_.size()) == 1) return;
  // The first virtual stage's embedding and the last one's head are one logical tensor: both
  // copies take the sum of their gradients (a + b == b + a in floating point, so the two copies
  // stay bitwise equal).
  auto embedding = [](Chunk& chunk) {
    ParameterStore& p = chunk.parameters();
    const ParameterInfo& info = p.info(p.index_of("embed/tokens/weight"));
    return std::make_pair(p.gradients() + info.offset, info.count);
  };
  if (stages == 1) {  // both copies on this rank (interleaved chunks)
    auto [first, count] = embedding(*chunks_.front());
    auto [last, unused] = embedding(*chunks_.back());
    backend_.add(first, first, last, count);
    backend_.copy_device(last, first, count);
    return;
  }
  if (stage != 0 && stage != stages - 1) return;
  Chunk& holder = stage == 0 ? *chunks_.front() : *chunks_.back();
  auto [gradient, count] = embedding(holder);
  if (holder.tied_peer == nullptr) holder.tied_peer = holder.pool->take(count);
  float* other = holder.tied_peer;
  const int peer = stage == 0 ? stages - 1 : 0;
  parallel_.pp().exchange(gradient, other, count, peer);
  backend_.add(gradient, gradient, other, count);
}

double ModelReplica::global_gradient_norm() {
  double sum = 0.0;
  for (auto& chunk : chunks_) {
    sum += owned_gradient_sum_of_squares(*chunk->model, backend_, chunk->optimizer->begin(),
                                         chunk->optimizer->end());
  }
  // Without ZeRO every dp replica holds the same reduced gradients: sum over one replica.
  Communicator& group = config_.parallel.zero == 1 ? parallel_.world() : parallel_.model();
  return std::sqrt(group.all_reduce_sum_double(sum));
}

void ModelReplica::inject_nan_gradients(int step) {
  const DebugConfig& debug = config_.debug;
  if (debug.nan_gradients_from == 0 || step < debug.nan_gradients_from ||
      step >= debug.nan_gradients_from + debug.nan_gradient_steps)
    return;
  // One element of what each rank's optimizer owns: the norm is summed over them all.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto& chunk : chunks_) {
    if (chunk->optimizer->end() > chunk->optimizer->begin())
      backend_.copy_from_host(chunk->parameters().gradients() + chunk->optimizer->begin(), &nan, 1);
  }
}

bool ModelReplica::state_is_finite() {
  // A sum of squares of floats is finite in double exactly when every term is.
  double sum = 0.0;
  for (auto& chunk : chunks_) {
    const ParameterStore& p = chunk->parameters();
    const std::size_t moments = chunk->optimizer->end() - chunk->optimizer->begin();
    sum += backend_.sum_of_squares(p.values(), p.total_count()) +
           backend_.sum_of_squares(chunk->optimizer->first_moments(), moments) +
           backend_.sum_of_squares(chunk->optimizer->second_moments(), moments);
  }
  const double bad = std::isfinite(sum) ? 0.0 : 1.0;
  return parallel_.world().all_reduce_max_double(bad) == 0.0;
}

UpdateResult ModelReplica::reduce_and_update(int step, double lr, bool loss_finite) {
  UpdateResult result;
  const bool zero = config_.parallel.zero == 1;
  StepTimer communication;
  if (config_.parallel.deterministic) {
    fold_captured_gradients_in_order();
  } else {
    for (auto& chunk : chunks_) {
      if (chunk->buckets) chunk->buckets->finish();
    }
  }
  exchange_tied_embedding_gradients();
  if (zero && !config_.parallel.deterministic) {
    for (auto& chunk : chunks_) {
      ParameterStore& p = chunk->parameters();
      const std::size_t shard = chunk->optimizer->end() - chunk->optimizer->begin();
      parallel_.dp().reduce_scatter_sum(p.gradients(), chunk->shard, shard);
      backend_.copy_device(p.gradients() + chunk->optimizer->begin(), chunk->shard, shard);
    }
  }
  result.timings.dp_wait_s = communication.seconds();

  inject_nan_gradients(step);
  StepTimer optimizer;
  result.grad_norm = global_gradient_norm();
  result.skipped = !loss_finite || !std::isfinite(result.grad_norm);
  if (result.skipped) {
    result.timings.optimizer_s = optimizer.seconds();
    return result;
  }
  const float clip = clip_factor(config_.train.grad_clip, result.grad_norm);
  for (auto& chunk : chunks_) chunk->optimizer->step(step, lr, clip);
  if (zero) {
    for (auto& chunk : chunks_) {
      ParameterStore& p = chunk->parameters();
      const std::size_t shard = chunk->optimizer->end() - chunk->optimizer->begin();
      parallel_.dp().all_gather(p.values() + chunk->optimizer->begin(), p.values(), shard);
    }
  }
  result.timings.optimizer_s = optimizer.seconds();
  return result;
}

std::string ModelReplica::parameter_checksum() const {
  uint64_t hash = kFnv1a64Offset;
  std::vector<float> host;
  for (const auto& chunk : chunks_) {
    const ParameterStore& p = chunk->model->parameters();
    host.resize(p.total_count());
    backend_.copy_to_host(host.data(), p.values(), host.size());
    hash = fnv1a64(std::as_bytes(std::span<const float>(host)), hash);
  }
  return to_hex16(hash);
}

}  // namespace tessera
