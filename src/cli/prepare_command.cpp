// The steps of io/data/prepare.hpp over the ranks of the job, each ended by an agreement so that
// a problem met by one rank stops all of them with one message; progress from rank 0 (a bar on a
// terminal, a line every 10 s in a batch log).
#include "cli/prepare_command.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "io/data/prepare.hpp"
#include "io/data/tokenizer.hpp"
#include "io/metrics/fraction_progress.hpp"
#include "parallel/agreement.hpp"
#include "parallel/mpi_communicator.hpp"

namespace tessera {
namespace {

struct PrepareCommandOptions {
  PrepareOptions prepare;
  double chunk_mib = 0;  // 0: 1/256 of the input, between 1 and 64 MiB
  std::string progress = "auto";
};

/// prepare's line: how much of the input is read, how fast, how many tokens rank 0 made.
std::string prepare_facts(const PrepareProgress& progress, double seconds) {
  const double read = static_cast<double>(progress.input_bytes_read);
  return fmt::format("{:.1f}/{:.1f} MB read | {:.2f} MB/s | {} tokens on rank 0", read / 1e6,
                     static_cast<double>(progress.input_bytes) / 1e6,
                     seconds > 0 ? read / seconds / 1e6 : 0.0,
                     format_rate(static_cast<double>(progress.tokens)));
}

double fraction_read(const PrepareProgress& progress) {
  return progress.input_bytes == 0 ? 1.0
                                   : static_cast<double>(progress.input_bytes_read) /
                                         static_cast<double>(progress.input_bytes);
}

void run(PrepareCommandOptions& options) {
  options.prepare.chunk_bytes = static_cast<uint64_t>(options.chunk_mib * (1 << 20));
  MpiCommunicator world(duplicate(MPI_COMM_WORLD));
  const bool reporter = world.rank() == 0;
  const PrepareOptions& prepare = options.prepare;
  FractionProgress display(std::cout, choose_progress_style(options.progress, stdout_is_terminal()),
                           "prepare");

  int64_t kept = 0;
  run_agreed(world, [&] {
    if (reporter) kept = begin_prepare(prepare);
  });
  if (reporter && kept > 0) {
    std::cout << "prepare: resuming: " << kept
              << " chunks of an earlier run with the same inputs and tokenizer are kept\n";
  }
  std::unique_ptr<Tokenizer> tokenizer;
  run_agreed(world, [&] { tokenizer = open_prepare_tokenizer(prepare); });
  int64_t chunks = 0;
  PrepareProgress mine;
  run_agreed(world, [&] {
    chunks = tokenize_chunks(
        prepare, *tokenizer, world.rank(), world.size(), [&](const PrepareProgress& p) {
          mine = p;
          if (reporter) {
            display.show(fraction_read(p), prepare_facts(p, display.seconds()));
          }
        });
  });
  if (reporter) display.finish();
  const double text_bytes = world.all_reduce_sum_double(static_cast<double>(mine.text_bytes));
  std::vector<double> train_counts;
  run_agreed(world, [&] {
    train_counts = write_shards(prepare, *tokenizer, chunks, world.rank(), world.size());
  });
  world.all_reduce_sum_doubles(train_counts.data(), train_counts.size());
  run_agreed(world, [&] {
    if (reporter) finish_prepare(prepare, *tokenizer, chunks, train_counts);
  });
  if (reporter) {
    std::cout << fmt::format(
        "prepare: {} chunks ({} encoded now) -> {} in {:.1f} s: {:.2f} MB of text encoded at "
        "{:.2f} MB/s over {} rank(s)\n",
        chunks, chunks - kept, prepare.output_dir.string(), display.seconds(), text_bytes / 1e6,
        text_bytes / 1e6 / display.seconds(), world.size());
  }
}

}  // namespace

void add_prepare_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "prepare",
      "Tokenize a corpus (text, JSON Lines, gzip/zstd) into token shards with a held-out "
      "validation split; under mpirun every rank encodes a share");
  auto options = std::make_shared<PrepareCommandOptions>();
  PrepareOptions& prepare = options->prepare;
  cmd->add_option("inputs", prepare.inputs,
                  "Text files (one document each), JSON Lines files (.jsonl/.ndjson/.json, one "
                  "document per line), either optionally .gz or .zst, or directories of them");
  cmd->add_option("--input-list", prepare.input_list,
                  "A file naming more inputs, one per line (relative to its directory)");
  cmd->add_option("-o,--output", prepare.output_dir, "Directory for the shards (data.source)")
      ->required();
  cmd->add_option("--tokenizer", prepare.tokenizer,
                  "byte (built in), sentencepiece (trained here) or hf:PATH/tokenizer.json")
      ->capture_default_str();
  cmd->add_option("--text-key", prepare.text_key, "JSON Lines: the field holding the text")
      ->capture_default_str();
  cmd->add_option("--vocab-size", prepare.vocab_size, "SentencePiece vocabulary size")
      ->capture_default_str();
  cmd->add_option("--model-type", prepare.sp_model_type, "SentencePiece model: bpe or unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  cmd->add_option("--val-fraction", prepare.val_fraction,
                  "Fraction of the tokens (the last ones) held out for validation")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  cmd->add_option("--chunk-mib", options->chunk_mib,
                  "Input per unit of work (MiB of raw documents): what a stopped run keeps and "
                  "what ranks share out; by default 1/256 of the input, between 1 and 64")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--progress", options->progress,
                  "auto (a bar on a terminal), bar, or plain (a line every 10 s)")
      ->check(CLI::IsMember({"auto", "bar", "plain"}))
      ->capture_default_str();
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
