#include "plan/step_time.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "parallel/layout/stage_balance.hpp"
#include "plan/memory_plan.hpp"

namespace tessera {
namespace {

constexpr double kGB = 1e9;

/// Whether the ranks of `axis`'s groups sit on more than one node (every group of an axis is
/// laid out alike, so rank 0's tells).
bool spans_nodes(GridAxis axis, const TrainingLayout& layout, int devices_per_node) {
  const std::vector<int> members = group_members(0, axis, layout.shape, layout.order);
  return members.front() / devices_per_node != members.back() / devices_per_node;
}

/// A ring all-reduce of `bytes` over `ranks`: each rank sends 2 (n - 1) / n of the data in
/// 2 (n - 1) messages.
struct RingTraffic {
  double bytes = 0.0, messages = 0.0;
  RingTraffic(double data, int ranks) {
    if (ranks <= 1) return;
    messages = 2.0 * (ranks - 1);
    bytes = messages / ranks * data;
  }
  double seconds(double gb_s, double latency_s) const {
    return bytes / (gb_s * kGB) + messages * latency_s;
  }
};

/// Forward FLOPs per token of blocks [first, end), the head on the last virtual stage, and what
/// recomputation runs again: full recomputes each block's forward, selective its attention core.
double stage_flops_per_token(const Config& config, int blocks, bool last) {
  const ModelConfig& model = config.model;
  const double forward = blocks * block_cost(model) + (last ? head_cost(model) : 0.0);
  double again = 0.0;
  if (config.train.recompute == Recompute::full) again = blocks * block_cost(model);
  if (config.train.recompute == Recompute::selective) {
    again = blocks * 4.0 * model.d_model * model.seq_len;
  }
  return 3.0 * forward + again;
}

/// Forward-and-backward FLOPs per token of pipeline rank `stage`'s chunks.
double rank_flops_per_token(const Config& config, const TrainingLayout& layout, int stage) {
  double flops = 0.0;
  for (const StageChunk& chunk : chunks_of(layout, stage)) {
    flops += stage_flops_per_token(config, chunk.blocks(), chunk.last);
  }
  return flops;
}

/// The pipeline stage that computes the most (the pipeline runs at its pace).
int slowest_stage(const Config& config, const TrainingLayout& layout) {
  int slowest = 0;
  for (int stage = 1; stage < layout.shape.pp; ++stage) {
    if (rank_flops_per_token(config, layout, stage) >
        rank_flops_per_token(config, layout, slowest)) {
      slowest = stage;
    }
  }
  return slowest;
}

int blocks_of_stage(const TrainingLayout& layout, int stage) {
  int blocks = 0;
  for (const StageChunk& chunk : chunks_of(layout, stage)) blocks += chunk.blocks();
  return blocks;
}

}  // namespace

StepTime plan_step_time(const Config& config, const TrainingLayout& layout,
                        const HardwareProfile& profile) {
  const Precision precision = config.train.precision;
  const double rate = profile.achievable_tflops.of(precision) * 1e12;
  if (rate <= 0.0) {
    throw UsageError(fmt::format(
        "hardware profile {} has no achievable_tflops.{} (0): this machine does not compute "
        "in it; set train.precision = \"fp32\", or add the rate to the profile",
        profile.name, precision == Precision::bf16 ? "bf16" : "fp32"));
  }
  const GridShape& shape = layout.shape;
  const double latency = profile.latency_us * 1e-6;
  const int stage = slowest_stage(config, layout);
  const double seq = config.model.seq_len, d = config.model.d_model;
  const double tokens_per_replica = static_cast<double>(config.train.global_batch) * seq / shape.dp;
  const double microbatches = layout.micro_batches;
  StepTime time;

  // Compute: this rank's share (1 / tp) of its stage's FLOPs for its replica's tokens, and the
  // fixed cost of each block's kernels per microbatch (forward, backward, a recomputed forward).
  const double passes = config.train.recompute == Recompute::full ? 3.0 : 2.0;
  time.compute_flops = tokens_per_replica * rank_flops_per_token(config, layout, stage) / shape.tp;
  time.overhead_s =
      microbatches * passes * blocks_of_stage(layout, stage) * profile.block_overhead_us * 1e-6;
  time.compute_s = time.compute_flops / rate + time.overhead_s;

  // Tensor parallelism: 4 collectives of a microbatch's [rows, d] activations per block (2 in
  // forward, 2 in backward; recomputing a block forward repeats its 2), the embedding's and
  // the head's.
  const double activation_bytes = layout.micro_batch * seq * d * sizeof(float);
  const double per_block = config.train.recompute == Recompute::full ? 6.0 : 4.0;
  const double collectives = per_block * blocks_of_stage(layout, stage) + 2.0;
  const RingTraffic tp_ring(activation_bytes, shape.tp);
  time.tp_link_bytes = microbatches * collectives * tp_ring.bytes;
  time.tp_messages = microbatches * collectives * tp_ring.messages;
  time.tp_comm_s =
      time.tp_link_bytes / (profile.intra_node_gb_s * kGB) + time.tp_messages * latency;

  // Pipeline: the bubble of the busy time, and the sends that fill and drain it.
  const double busy_s = time.compute_s + time.tp_comm_s;
  if (shape.pp > 1) {
    time.pipeline_bubble_s =
        theoretical_bubble_fraction(shape.pp, layout.micro_batches, layout.chunks_per_stage) *
        busy_s;
    const bool across_nodes = spans_nodes(GridAxis::pp, layout, profile.devices_per_node);
    const double link_gb_s =
        across_nodes ? profile.inter_node_gb_s / profile.devices_per_node : profile.intra_node_gb_s;
    const double send_bytes = activation_bytes / (layout.sequence_parallel ? shape.tp : 1);
    const double sends = 2.0 * (shape.pp * layout.chunks_per_stage - 1);
    time.pipeline_send_s = sends * (send_bytes / (link_gb_s * kGB) + latency);
  }

  // Data parallelism: the gradients of this rank's parameters. A group across nodes shares the
  // node's links with every other rank of the node (all reduce at once).
  const StageMemory memory =
      plan_memory(config, layout, {}).stages[static_cast<std::size_t>(stage)];
  const double gradient_bytes = static_cast<double>(memory.gradients);
  const bool dp_across_nodes = spans_nodes(GridAxis::dp, layout, profile.devices_per_node);
  const double dp_gb_s = dp_across_nodes ? profile.inter_node_gb_s / profile.devices_per_node
                                         : profile.intra_node_gb_s;
  const double reduce_s = RingTraffic(gradient_bytes, shape.dp).seconds(dp_gb_s, latency);
  const bool overlapped = config.parallel.zero == 0 && !config.parallel.deterministic;
  if (overlapped && shape.dp > 1) {
    const double last_backward_s = busy_s * (2.0 / 3.0) / microbatches;
    const double bucket_bytes =
        std::min<double>(gradient_bytes, config.parallel.bucket_mb * 1048576.0);
    const double last_bucket_s = RingTraffic(bucket_bytes, shape.dp).seconds(dp_gb_s, latency);
    time.dp_comm_s = std::max(reduce_s - last_backward_s, last_bucket_s);
  } else {
    time.dp_comm_s = config.parallel.deterministic ? 2.0 * reduce_s : reduce_s;
  }

  // AdamW reads parameter, gradient, m, v and writes parameter, m, v (28 bytes a parameter);
  // the gradient norm and zeroing stream the gradients twice more.
  const double updated = static_cast<double>(memory.parameters) / sizeof(float) /
                         (config.parallel.zero == 1 ? shape.dp : 1);
  time.optimizer_bytes = 28.0 * updated + 8.0 * gradient_bytes / sizeof(float);
  time.optimizer_s = time.optimizer_bytes / (profile.memory_bandwidth_gb_s * kGB);

  time.total_s = time.compute_s + time.tp_comm_s + time.pipeline_bubble_s + time.pipeline_send_s +
                 time.dp_comm_s + time.optimizer_s;
  time.tokens_per_s = static_cast<double>(config.train.global_batch) * seq / time.total_s;
  const double peak = profile.peak_tflops.of(precision) * 1e12 * shape.world_size();
  time.mfu = model_flops_per_token(config.model) * time.tokens_per_s / peak;
  return time;
}

}  // namespace tessera
