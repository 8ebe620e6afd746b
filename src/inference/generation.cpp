#include "inference/generation.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "train/step_timer.hpp"

namespace tessera {
namespace {

/// One decoding step of `count` rows through every virtual stage in order: virtual stage k is
/// chunk k / pp of pipeline rank k % pp, and passes its rows to virtual stage k + 1.
void decode_step(CheckpointModel& model, const int32_t* tokens, int count) {
  const int stages = model.layout().shape.pp;
  const int stage = model.parallel().coordinates().pp;
  const std::vector<Transformer*> chunks = model.chunks();
  const int virtual_stages = stages * static_cast<int>(chunks.size());
  const std::size_t floats = static_cast<std::size_t>(count) * model.config().model.d_model;
  for (int k = 0; k < virtual_stages; ++k) {
    if (k % stages != stage) continue;
    Transformer& chunk = *chunks[static_cast<std::size_t>(k / stages)];
    if (k > 0) model.parallel().pp().recv(chunk.decode_input(), floats, (k - 1) % stages, k);
    chunk.decode(tokens, count);
    if (k + 1 < virtual_stages) {
      model.parallel().pp().send(chunk.decode_output(), floats, (k + 1) % stages, k + 1);
    }
  }
}

}  // namespace

void check_generation(const GenerationRequest& request, const ModelConfig& model) {
  check_sampling(request.sampling);
  if (request.prompt.empty()) {
    throw UsageError("the prompt has no tokens; give some text with --prompt");
  }
  if (request.max_new_tokens < 1) {
    throw UsageError(fmt::format("--max-new-tokens {} must be at least 1", request.max_new_tokens));
  }
  const auto total = static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens;
  if (total > model.seq_len) {
    throw UsageError(fmt::format(
        "the prompt's {} tokens and --max-new-tokens {} exceed model.seq_len = {}, the longest "
        "sequence the model was trained on; ask for at most {} new tokens or shorten the prompt",
        request.prompt.size(), request.max_new_tokens, model.seq_len,
        std::max<int64_t>(0, model.seq_len - static_cast<int64_t>(request.prompt.size()))));
  }
}

GenerationResult generate(CheckpointModel& model, const GenerationRequest& request,
                          const std::function<void(int32_t)>& on_token) {
  TESSERA_CHECK(model.layout().shape.dp == 1, "generation runs on one model replica");
  check_generation(request, model.config().model);
  for (Transformer* chunk : model.chunks()) chunk->start_sequence();
  // The rank holding the logits samples (the last stage's tp rank 0); the others learn the token.
  const bool sampler_rank = model.loss_holder();
  TokenSampler sampler(request.sampling);
  Transformer& last = *model.chunks().back();
  GenerationResult result;
  std::vector<int32_t> step = request.prompt;
  StepTimer timer;
  for (int n = 0; n < request.max_new_tokens; ++n) {
    decode_step(model, step.data(), static_cast<int>(step.size()));
    const double mine = sampler_rank ? sampler.next(last.decode_logits()) : -1.0;
    const auto token = static_cast<int32_t>(model.parallel().world().all_reduce_max_double(mine));
    (n == 0 ? result.prefill_s : result.decode_s) += timer.seconds();
    timer.restart();
    result.tokens.push_back(token);
    if (on_token) on_token(token);
    if (request.stop_token && token == *request.stop_token) {
      result.stopped = true;
      break;
    }
    step.assign(1, token);
  }
  return result;
}

}  // namespace tessera
