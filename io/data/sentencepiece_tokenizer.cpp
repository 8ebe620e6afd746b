#include "io/data/sentencepiece_tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <unordered_map>

#include "core/checksum.hpp"
#include "core/error.hpp"

namespace tessera {
namespace {

// Feeds the trainer the lines of the input files, so that any path works (the "input" flag is a
// comma-separated list) and missing files are reported as UsageError before training starts.
class FileLineIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit FileLineIterator(std::vector<std::filesystem::path> files) : files_(std::move(files)) {
    open_next_file();
  }
  bool done() const override { return done_; }
  void Next() override {
    while (!std::getline(stream_, line_)) {
      if (!open_next_file()) return;
    }
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  // Opens the next file and reads its first line; false (and done) when no file is left.
  bool open_next_file() {
    for (;;) {
      if (next_file_ == files_.size()) {
        done_ = true;
        return false;
      }
      stream_ = std::ifstream(files_[next_file_++]);
      if (std::getline(stream_, line_)) return true;
    }
  }

  std::vector<std::filesystem::path> files_;
  size_t next_file_ = 0;
  std::ifstream stream_;
  std::string line_;
  bool done_ = false;
};

std::string train_failure_hint(const std::string& message) {
  if (message.find("Vocabulary size") != std::string::npos ||
      message.find("vocab_size") != std::string::npos) {
    return "; lower the sentencepiece vocabulary size or give more text";
  }
  return "";
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(
    std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
    std::filesystem::path model_file, std::string id)
    : processor_(std::move(processor)), model_file_(std::move(model_file)), id_(std::move(id)) {}

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept =
    default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer SentencePieceTokenizer::load(const std::filesystem::path& model_file) {
  if (!std::filesystem::is_regular_file(model_file)) {
    throw UsageError("sentencepiece model " + model_file.string() +
                     " does not exist; re-run `tessera prepare` to train it");
  }
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->Load(model_file.string());
  if (!status.ok()) {
    throw UsageError("cannot load sentencepiece model " + model_file.string() + " (" +
                     status.ToString() + "); re-run `tessera prepare` to rewrite it");
  }
  const std::string proto = processor->serialized_model_proto();
  const uint64_t hash = fnv1a64(std::as_bytes(std::span(proto.data(), proto.size())));
  return SentencePieceTokenizer(std::move(processor), model_file,
                                "sentencepiece:" + to_hex16(hash));
}

SentencePieceTokenizer SentencePieceTokenizer::train(const SentencePieceTrainOptions& options) {
  if (options.model_type != "bpe" && options.model_type != "unigram") {
    throw UsageError("sentencepiece model type '" + options.model_type +
                     "' is not supported; use \"bpe\" or \"unigram\"");
  }
  if (options.vocab_size < 260) {
    throw UsageError("sentencepiece vocabulary size " + std::to_string(options.vocab_size) +
                     " is too small: byte fallback needs 256 ids plus control ids; use >= 260");
  }
  for (const auto& input : options.inputs) {
    if (!std::filesystem::is_regular_file(input)) {
      throw UsageError("input file " + input.string() + " does not exist; check the path");
    }
  }
  std::filesystem::create_directories(options.output_dir);
  const auto prefix = options.output_dir / "tokenizer";
  // Identity normalisation, no dummy prefix and byte fallback make encoding lossless, so the
  // tokens of a text are exactly that text (newlines, repeated spaces and all).
  const std::unordered_map<std::string, std::string> args = {
      {"model_prefix", prefix.string()},
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9995"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "true"},
      {"input_sentence_size", "2000000"},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(options.num_threads)},
      {"minloglevel", "2"},
  };
  FileLineIterator lines(options.inputs);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines);
  if (!status.ok()) {
    const std::string message = status.ToString();
    throw UsageError("sentencepiece training failed: " + message + train_failure_hint(message));
  }
  return load(prefix.string() + ".model");
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::vector<int> line_ids;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size() - 1) + 1;
    const auto status = processor_->Encode(absl::string_view(text.data(), end), &line_ids);
    TESSERA_CHECK(status.ok(), status.ToString());
    ids.insert(ids.end(), line_ids.begin(), line_ids.end());
    text.remove_prefix(end);
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  const auto status = processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  TESSERA_CHECK(status.ok(), status.ToString());
  return text;
}

int SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

}  // namespace tessera
