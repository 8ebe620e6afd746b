#include "plan/memory_plan.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace tessera {
namespace {

constexpr std::size_t kFloat = sizeof(float);
constexpr std::size_t kToken = sizeof(int32_t);

/// The sizes one rank's share of the model works with (Transformer's local_* figures).
struct LocalSizes {
  std::size_t d = 0, ffn = 0, width = 0, heads = 0, head_dim = 0, vocab = 0, seq = 0;
  std::size_t rows = 0;   ///< micro_batch x seq
  std::size_t local = 0;  ///< rows of the residual stream held here (rows / tp under sp)
  std::size_t tp = 1;
  bool swiglu = false, bias = false, layernorm = true;
};

LocalSizes local_sizes(const Config& config, const TrainingLayout& layout) {
  const ModelConfig& model = config.model;
  LocalSizes s;
  s.tp = static_cast<std::size_t>(layout.shape.tp);
  s.d = static_cast<std::size_t>(model.d_model);
  s.ffn = static_cast<std::size_t>(model.ffn_hidden) / s.tp;
  s.width = s.d / s.tp;
  s.heads = static_cast<std::size_t>(model.n_heads) / s.tp;
  s.head_dim = static_cast<std::size_t>(model.head_dim());
  s.vocab = static_cast<std::size_t>(model.vocab_size) / s.tp;
  s.seq = static_cast<std::size_t>(model.seq_len);
  s.rows = static_cast<std::size_t>(layout.micro_batch) * s.seq;
  s.local = layout.sequence_parallel && s.tp > 1 ? s.rows / s.tp : s.rows;
  s.swiglu = model.swiglu();
  s.bias = model.has_bias();
  s.layernorm = model.norm == NormKind::layernorm;
  return s;
}

std::size_t norm_parameters(const LocalSizes& s) { return s.layernorm ? 2 * s.d : s.d; }

/// Floats of this rank's parameters in `chunk` (Transformer::register_parameters).
std::size_t parameter_count(const Config& config, const LocalSizes& s, const StageChunk& chunk) {
  std::size_t block = 2 * norm_parameters(s) + 3 * s.width * s.d + s.d * s.width;
  if (s.bias) block += 3 * s.width + s.d;
  block += s.swiglu ? 3 * s.ffn * s.d : 2 * s.ffn * s.d + (s.bias ? s.ffn + s.d : 0);
  std::size_t count = block * static_cast<std::size_t>(chunk.blocks());
  const bool tied = config.model.tied_embeddings();
  if (chunk.first || (tied && chunk.last)) count += s.vocab * s.d;
  if (chunk.first && config.model.learned_positions()) count += s.seq * s.d;
  if (chunk.last) count += norm_parameters(s) + (tied ? 0 : s.vocab * s.d);
  return count;
}

std::size_t attention_state(const LocalSizes& s, int micro_batch,
                            const BackendMemoryTraits& traits) {
  const std::size_t per_head = traits.attention_keeps_probabilities ? s.seq * s.seq : s.seq;
  return static_cast<std::size_t>(micro_batch) * s.heads * per_head;
}

/// Floats of one block's saved activations except its input (take_block_buffers).
std::size_t block_buffers(const LocalSizes& s, std::size_t state) {
  const std::size_t norms = 2 * (s.rows * s.d + 2 * s.local);  // outputs, mean and rstd
  const std::size_t attention = s.rows * 3 * s.width + state + s.rows * s.width + s.local * s.d;
  const std::size_t mlp = s.rows * s.ffn * (s.swiglu ? 3 : 2);
  return norms + attention + mlp;
}

/// Bytes of one microbatch's activation slot on `chunk` (slot_activations).
std::size_t slot_bytes(const LocalSizes& s, const StageChunk& chunk, Recompute recompute,
                       std::size_t state) {
  std::size_t floats = 0;
  if (recompute != Recompute::full) {
    const std::size_t kept = recompute == Recompute::none ? state : 0;
    floats += static_cast<std::size_t>(chunk.blocks()) * block_buffers(s, kept);
  }
  floats += static_cast<std::size_t>(chunk.blocks()) * s.local * s.d;  // each block's input
  floats += s.local * s.d;                                             // the stage output
  if (chunk.last) floats += s.rows * s.d + 2 * s.local + s.rows * s.vocab + s.rows;
  return 2 * s.rows * kToken + floats * kFloat;
}

/// Bytes of the buffers recomputation refills, shared by every slot of a chunk.
std::size_t recompute_bytes(const LocalSizes& s, Recompute recompute, std::size_t state) {
  if (recompute == Recompute::none) return 0;
  if (recompute == Recompute::selective) return state * kFloat;
  return (block_buffers(s, state) + s.local * s.d) * kFloat;
}

/// Bytes of a chunk's backward scratch (Transformer::ensure_scratch).
std::size_t backward_scratch_bytes(const LocalSizes& s, bool sequence_parallel) {
  std::size_t floats = 2 * s.local * s.d + 2 * s.rows * s.d + s.rows * 3 * s.width +
                       s.rows * s.width + 3 * s.rows * s.ffn + 4 * s.rows;
  if (sequence_parallel) floats += s.rows * s.d + s.local * s.d + 2 * s.d;
  return floats * kFloat;
}

/// Bytes of the backend's own scratch, one buffer grown to its largest request: the CPU
/// attention backward's seq x seq per thread, the rotary table; on a GPU the libraries'.
std::size_t backend_workspace_bytes(const Config& config, const LocalSizes& s,
                                    const BackendMemoryTraits& traits) {
  if (!traits.attention_keeps_probabilities) return traits.library_workspace_bytes;
  std::size_t floats = s.seq * s.seq * static_cast<std::size_t>(std::max(1, traits.threads));
  if (config.model.rotary()) floats = std::max(floats, s.seq * s.head_dim);
  return floats * kFloat + traits.library_workspace_bytes;
}

StageMemory plan_stage(const Config& config, const TrainingLayout& layout,
                       const BackendMemoryTraits& traits, int stage) {
  const LocalSizes s = local_sizes(config, layout);
  const auto dp = static_cast<std::size_t>(layout.shape.dp);
  const bool zero = config.parallel.zero == 1;
  const Recompute recompute = config.train.recompute;
  const std::size_t state = attention_state(s, layout.micro_batch, traits);
  const std::vector<int> in_flight =
      peak_in_flight(schedule_for(layout, stage), layout.chunks_per_stage);
  const int evaluation_slots = config.eval.every > 0 ? 1 : 0;
  const bool sequence_parallel = layout.sequence_parallel && s.tp > 1;
  const std::vector<StageChunk> chunks = chunks_of(layout, stage);

  std::size_t parameters = 0, optimizer = 0, activations = 0, communication = 0, scratch = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    const StageChunk& chunk = chunks[c];
    const std::size_t count = parameter_count(config, s, chunk);
    const std::size_t padded = zero ? (count + dp - 1) / dp * dp : count;
    parameters += padded * kFloat;
    // AdamW's m and v over this rank's range; under ZeRO-1 also the reduced gradient shard.
    optimizer += 2 * std::max<std::size_t>(1, zero ? padded / dp : count) * kFloat;
    if (zero) communication += padded / dp * kFloat;
    const auto slots = static_cast<std::size_t>(in_flight[c] + evaluation_slots);
    activations +=
        slots * slot_bytes(s, chunk, recompute, state) + recompute_bytes(s, recompute, state);
    scratch += backward_scratch_bytes(s, sequence_parallel);
    const auto microbatches = static_cast<std::size_t>(layout.micro_batches);
    // A copy of each microbatch's input gradient, sent to the previous virtual stage.
    if (!chunk.first) communication += microbatches * s.local * s.d * kFloat;
    if (config.parallel.deterministic) communication += microbatches * padded * kFloat;
  }
  const bool tied_across_stages = config.model.tied_embeddings() && layout.shape.pp > 1 &&
                                  (stage == 0 || stage == layout.shape.pp - 1);
  if (tied_across_stages) communication += s.vocab * s.d * kFloat;  // the peer's gradient
  return {.stage = stage,
          .parameters = parameters,
          .gradients = parameters,
          .optimizer_state = optimizer,
          .activations = activations,
          .communication_buffers = communication,
          .workspace = scratch + backend_workspace_bytes(config, s, traits)};
}

}  // namespace

BackendMemoryTraits memory_traits(BackendKind backend, int threads) {
  BackendMemoryTraits traits;
  traits.threads = threads;
  traits.attention_keeps_probabilities = backend != BackendKind::cuda;
  return traits;
}

std::vector<MemoryPart> StageMemory::parts() const {
  return {{"parameters", parameters},
          {"gradients", gradients},
          {"optimizer state", optimizer_state},
          {"activations", activations},
          {"communication buffers", communication_buffers},
          {"workspace", workspace}};
}

std::size_t StageMemory::total() const {
  return parameters + gradients + optimizer_state + activations + communication_buffers + workspace;
}

MemoryPart StageMemory::largest() const {
  const std::vector<MemoryPart> all = parts();
  return *std::max_element(all.begin(), all.end(), [](const MemoryPart& a, const MemoryPart& b) {
    return a.bytes < b.bytes;
  });
}

const StageMemory& MemoryPlan::peak() const {
  TESSERA_CHECK(!stages.empty(), "a memory plan without stages");
  return *std::max_element(
      stages.begin(), stages.end(),
      [](const StageMemory& a, const StageMemory& b) { return a.total() < b.total(); });
}

MemoryPlan plan_memory(const Config& config, const TrainingLayout& layout,
                       const BackendMemoryTraits& traits) {
  MemoryPlan plan;
  for (int stage = 0; stage < layout.shape.pp; ++stage) {
    plan.stages.push_back(plan_stage(config, layout, traits, stage));
  }
  return plan;
}

}  // namespace tessera
