#include "cli/generate_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/output_file.hpp"
#include "core/error.hpp"
#include "core/json_file.hpp"
#include "inference/checkpoint_model.hpp"
#include "inference/generation.hpp"
#include "parallel/agreement.hpp"
#include "parallel/mpi_communicator.hpp"

namespace tessera {
namespace {

struct GenerateCommandOptions {
  CheckpointModelOptions model;
  std::string prompt;
  int max_new_tokens = 64;
  SamplingOptions sampling;
  bool ignore_end_of_text = false;
  std::filesystem::path tokenizer;
  std::filesystem::path json;
};

/// The tokenizer's end-of-text token, if it has one.
std::optional<int32_t> end_of_text(const Tokenizer& tokenizer) {
  const std::map<std::string, int32_t> special = tokenizer.special_tokens();
  for (const std::string_view name : kEndOfTextNames) {
    const auto found = special.find(std::string(name));
    if (found != special.end()) return found->second;
  }
  return std::nullopt;
}

void run(GenerateCommandOptions& options) {
  MpiCommunicator world(duplicate(MPI_COMM_WORLD));
  const bool reporter = world.rank() == 0;
  check_sampling(options.sampling);
  run_agreed(world, [&] {
    if (reporter) check_output_file(options.json, "--json");
  });
  options.model.one_replica = true;
  CheckpointModel model(options.model, [&](const std::string& warning) {
    if (reporter) std::cerr << "warning: " << warning << "\n";
  });
  std::unique_ptr<Tokenizer> tokenizer;
  GenerationRequest request;
  run_agreed(world, [&] {
    tokenizer = model.open_tokenizer(options.tokenizer);
    request.prompt = tokenizer->encode(options.prompt);
    request.max_new_tokens = options.max_new_tokens;
    request.sampling = options.sampling;
    if (!options.ignore_end_of_text) request.stop_token = end_of_text(*tokenizer);
    check_generation(request, model.config().model);
  });
  const GenerationResult result = generate(model, request);
  if (!reporter) return;
  const std::string text = tokenizer->decode(result.tokens);
  std::cout << options.prompt << text << "\n" << std::flush;
  const double new_tokens = static_cast<double>(result.tokens.size());
  std::cerr << fmt::format(
      "generate: {} prompt tokens, {} new{} in {:.2f} s (prompt and first token {:.3f} s, then "
      "{:.1f} tokens/s) at tp={} pp={}\n",
      request.prompt.size(), result.tokens.size(),
      result.stopped ? " (stopped at end of text)" : "", result.prefill_s + result.decode_s,
      result.prefill_s,
      new_tokens > 1 && result.decode_s > 0 ? (new_tokens - 1) / result.decode_s : 0.0,
      model.layout().shape.tp, model.layout().shape.pp);
  if (!options.json.empty()) {
    write_json_file(options.json, {{"checkpoint", model.file().string()},
                                   {"prompt", options.prompt},
                                   {"prompt_tokens", request.prompt},
                                   {"tokens", result.tokens},
                                   {"text", text},
                                   {"stopped_at_end_of_text", result.stopped},
                                   {"temperature", options.sampling.temperature},
                                   {"top_k", options.sampling.top_k},
                                   {"top_p", options.sampling.top_p},
                                   {"seed", options.sampling.seed},
                                   {"prefill_s", result.prefill_s},
                                   {"decode_s", result.decode_s}});
  }
}

}  // namespace

void add_generate_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "generate",
      "Continue a prompt with a checkpoint's model (KV cache; temperature, top-k, top-p, seed) on "
      "one model replica at any tp x pp layout");
  auto options = std::make_shared<GenerateCommandOptions>();
  cmd->add_option("checkpoint", options->model.checkpoint,
                  "A step_*.h5 file, or a checkpoint directory (its newest intact checkpoint)")
      ->required();
  cmd->add_option("--prompt", options->prompt, "The text to continue")->required();
  cmd->add_option("--max-new-tokens", options->max_new_tokens, "Tokens to generate at most")
      ->capture_default_str();
  cmd->add_option("--temperature", options->sampling.temperature,
                  "Softmax temperature; 0 picks the most likely token every time (greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", options->sampling.top_k,
                  "Sample among the k most likely tokens only (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--top-p", options->sampling.top_p,
                  "Sample among the most likely tokens whose probability reaches p, in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--seed", options->sampling.seed,
                  "Seed of the sampling; the same seed gives the same text")
      ->capture_default_str();
  cmd->add_flag("--ignore-eos", options->ignore_end_of_text,
                "Go on past the tokenizer's end-of-text token");
  cmd->add_option("--tokenizer", options->tokenizer,
                  "The tokenizer file the data was prepared with (found from the run's "
                  "configuration when left out)");
  cmd->add_option("--json", options->json, "Write the prompt's and the new tokens' ids here");
  cmd->add_option("--set", options->model.overrides,
                  "How to run the model, e.g. --set parallel.tp=2 --set parallel.pp=2 "
                  "(repeatable; the job's ranks must be tp x pp)")
      ->type_name("SECTION.KEY=VALUE");
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
