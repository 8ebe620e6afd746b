// Text generation with a checkpoint's model on one model replica (tp x pp ranks): the prompt
// goes through the model once (prefill), then one token at a time through each block's KV cache
// (Transformer::decode); pipeline stages pass each step's rows on, and the sampled token goes
// back to every rank.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "inference/checkpoint_model.hpp"
#include "inference/token_sampler.hpp"

namespace tessera {

struct GenerationRequest {
  std::vector<int32_t> prompt;  ///< at least one token
  int max_new_tokens = 0;       ///< prompt + these must fit model.seq_len
  SamplingOptions sampling;
  std::optional<int32_t> stop_token;  ///< generation ends after it (an end-of-text token)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  ///< the new ones
  bool stopped = false;         ///< ended at the stop token
  double prefill_s = 0.0;       ///< the prompt's pass and the first token
  double decode_s = 0.0;        ///< every later token
};

/// Checks the request against the model (UsageError: an empty prompt, max_new_tokens < 1, more
/// tokens than model.seq_len, bad sampling options) before any work.
void check_generation(const GenerationRequest& request, const ModelConfig& model);

/// Generates on `model`, whose layout must have dp = 1. Collective over its world; every rank
/// gets the same tokens, and `on_token` hears each as it comes (every rank).
GenerationResult generate(CheckpointModel& model, const GenerationRequest& request,
                          const std::function<void(int32_t)>& on_token = {});

}  // namespace tessera
