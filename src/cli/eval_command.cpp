#include "cli/eval_command.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/output_file.hpp"
#include "core/error.hpp"
#include "core/json_file.hpp"
#include "inference/checkpoint_model.hpp"
#include "inference/choice_scoring.hpp"
#include "inference/eval_report.hpp"
#include "inference/validation_loss.hpp"
#include "io/metrics/fraction_progress.hpp"
#include "parallel/agreement.hpp"
#include "parallel/mpi_communicator.hpp"

namespace tessera {
namespace {

struct EvalCommandOptions {
  CheckpointModelOptions model;
  std::vector<std::string> data;
  bool no_validation = false;
  std::vector<std::filesystem::path> tasks;
  int64_t windows = 0;
  std::filesystem::path tokenizer;
  std::filesystem::path json;
  std::filesystem::path markdown;
  std::string progress = "auto";
};

void write_text_file(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  if (!out) throw UsageError("cannot write " + file.string() + "; check the disk and permissions");
}

/// The data sources to evaluate: --data, else those the model was trained on.
std::vector<std::string> validation_sources(const EvalCommandOptions& options,
                                            const Config& config) {
  if (options.no_validation) return {};
  if (!options.data.empty()) return options.data;
  std::vector<std::string> sources;
  for (const DataSourceSpec& spec : data_sources(config.data)) sources.push_back(spec.dir);
  if (sources.empty()) sources.push_back(config.data.source);
  return sources;
}

/// Progress of a validation source or a task, on `bar`: rank 0's microbatches.
WorkProgress microbatches_shown(FractionProgress& bar) {
  return [&bar](int64_t done, int64_t total) {
    bar.show(total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total),
             fmt::format("{}/{} microbatches on rank 0", done, total));
  };
}

void run(const EvalCommandOptions& options) {
  MpiCommunicator world(duplicate(MPI_COMM_WORLD));
  const bool reporter = world.rank() == 0;
  std::ostream null_stream(nullptr);
  std::ostream& out = reporter ? std::cout : null_stream;
  const ProgressStyle style = choose_progress_style(options.progress, stdout_is_terminal());
  if (options.windows < 0) {
    throw UsageError(
        fmt::format("--windows {} is negative; give a count, or 0 for all", options.windows));
  }
  // Everything a rank could fail on alone is checked before the model is loaded.
  std::vector<ChoiceTask> tasks;
  run_agreed(world, [&] {
    if (reporter) {
      check_output_file(options.json, "--json");
      check_output_file(options.markdown, "--markdown");
    }
    for (const auto& file : options.tasks) tasks.push_back(read_choice_task(file));
  });
  CheckpointModel model(options.model,
                        [&](const std::string& warning) { out << "warning: " << warning << "\n"; });
  const Config& config = model.config();
  const GridShape& shape = model.layout().shape;
  EvalReport report;
  report.checkpoint = model.file();
  report.step = model.step();
  report.layout = shape.str();
  out << fmt::format("eval: {} (step {}) at {} on {} rank(s), {} backend\n",
                     report.checkpoint.string(), report.step, report.layout, world.size(),
                     model.backend().name())
      << std::flush;

  const std::vector<std::string> sources = validation_sources(options, config);
  std::vector<DataLoader> loaders;
  std::unique_ptr<Tokenizer> tokenizer;
  run_agreed(world, [&] {
    for (const std::string& source : sources) {
      loaders.push_back(open_validation_source(config, source));
    }
    if (!tasks.empty()) {
      tokenizer = model.open_tokenizer(options.tokenizer);
    }
  });
  for (std::size_t s = 0; s < sources.size(); ++s) {
    FractionProgress bar(out, style, "eval " + sources[s]);
    report.sources.push_back(
        validation_loss(model, loaders[s], sources[s], options.windows, microbatches_shown(bar)));
  }
  for (const ChoiceTask& task : tasks) {
    FractionProgress bar(out, style, "eval " + task.name);
    report.tasks.push_back(score_choice_task(model, *tokenizer, task, microbatches_shown(bar)));
  }
  if (!reporter) return;
  const std::string markdown = to_markdown(report);
  std::cout << "\n" << markdown;
  if (!options.json.empty()) write_json_file(options.json, to_json(report));
  if (!options.markdown.empty()) write_text_file(options.markdown, markdown);
}

}  // namespace

void add_eval_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint at any layout: validation loss and perplexity per data source, "
      "zero-shot multiple-choice tasks (JSON Lines); results as Markdown and JSON");
  auto options = std::make_shared<EvalCommandOptions>();
  cmd->add_option("checkpoint", options->model.checkpoint,
                  "A step_*.h5 file, or a checkpoint directory (its newest intact checkpoint)")
      ->required();
  cmd->add_option("--data", options->data,
                  "Data sources whose validation split to score (repeatable; default: those the "
                  "model was trained on)");
  cmd->add_flag("--no-validation", options->no_validation, "Score the tasks only");
  cmd->add_option("--tasks", options->tasks,
                  "Multiple-choice tasks, JSON Lines of {\"context\", \"choices\", \"answer\"} "
                  "(repeatable)");
  cmd->add_option("--windows", options->windows,
                  "Validation windows per source (0: all; the synthetic source needs a number)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", options->tokenizer,
                  "The tokenizer file the data was prepared with (found from the run's "
                  "configuration when left out)");
  cmd->add_option("--json", options->json, "Write every figure and score here (JSON)");
  cmd->add_option("--markdown", options->markdown, "Write the tables here (Markdown)");
  cmd->add_option("--set", options->model.overrides,
                  "How to run the model, e.g. --set parallel.tp=2 --set train.micro_batch=8 "
                  "(repeatable; dp is every rank that tp x pp leaves)")
      ->type_name("SECTION.KEY=VALUE");
  cmd->add_option("--progress", options->progress, "auto, bar or plain")->capture_default_str();
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
