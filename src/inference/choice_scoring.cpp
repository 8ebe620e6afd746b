#include "inference/choice_scoring.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>

#include "core/error.hpp"
#include "train/step_accounting.hpp"

namespace tessera {
namespace {

/// One (question, choice) as the model reads it: ids[0..n-2] in, ids[1..n-1] predicted, the
/// last `continuation` of them the choice's.
struct ChoiceSequence {
  std::vector<int32_t> ids;
  int continuation = 0;
  std::size_t bytes = 0;
  bool truncated = false;
};

ChoiceSequence encode_choice(const Tokenizer& tokenizer, const ChoiceTask& task,
                             const ChoiceQuestion& question, std::size_t choice, int seq_len) {
  const auto fail = [&](const std::string& problem) {
    return UsageError(task.file.string() + ":" + std::to_string(question.line) + ": " + problem);
  };
  std::string_view context = question.context;
  const std::size_t kept = context.find_last_not_of(" \t\n\r");
  const std::size_t cut = kept == std::string_view::npos ? 0 : kept + 1;
  const std::string continuation = std::string(context.substr(cut)) + question.choices[choice];
  context = context.substr(0, cut);
  const std::vector<int32_t> context_ids = tokenizer.encode_without_special_tokens(context);
  if (context_ids.empty()) {
    throw fail("the context has no tokens; give each question a context to continue");
  }
  std::vector<int32_t> ids =
      tokenizer.encode_without_special_tokens(std::string(context) + continuation);
  const auto continuation_tokens =
      static_cast<int>(ids.size()) - static_cast<int>(std::min(context_ids.size(), ids.size()));
  if (continuation_tokens == 0) {
    throw fail("choice " + std::to_string(choice) + " has no tokens; choices must not be empty");
  }
  if (continuation_tokens > seq_len) {
    throw fail(fmt::format("choice {} is {} tokens, more than model.seq_len = {}", choice,
                           continuation_tokens, seq_len));
  }
  ChoiceSequence sequence;
  sequence.continuation = continuation_tokens;
  sequence.bytes = continuation.size();
  const std::size_t limit = static_cast<std::size_t>(seq_len) + 1;
  if (ids.size() > limit) {
    ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(limit));
    sequence.truncated = true;
  }
  sequence.ids = std::move(ids);
  return sequence;
}

/// The index of the largest score (the first of equals).
template <class Score>
int best_choice(const std::vector<ChoiceScore>& choices, Score score) {
  int best = 0;
  for (std::size_t c = 1; c < choices.size(); ++c) {
    if (score(choices[c]) > score(choices[static_cast<std::size_t>(best)])) {
      best = static_cast<int>(c);
    }
  }
  return best;
}

}  // namespace

Accuracy accuracy_of(const std::vector<bool>& correct) {
  const auto n = static_cast<double>(correct.size());
  if (correct.empty()) return {};
  const double p = static_cast<double>(std::count(correct.begin(), correct.end(), true)) / n;
  return {p, correct.size() > 1 ? std::sqrt(p * (1.0 - p) / (n - 1.0)) : 0.0};
}

TaskScore score_choice_task(CheckpointModel& model, const Tokenizer& tokenizer,
                            const ChoiceTask& task, const WorkProgress& progress) {
  const Config& config = model.config();
  const int seq_len = config.model.seq_len, batch = config.train.micro_batch;
  std::vector<ChoiceSequence> sequences;
  for (const ChoiceQuestion& question : task.questions) {
    for (std::size_t c = 0; c < question.choices.size(); ++c) {
      sequences.push_back(encode_choice(tokenizer, task, question, c, seq_len));
    }
  }
  const auto count = static_cast<int64_t>(sequences.size());
  const int64_t microbatches = (count + batch - 1) / batch;
  const ReplicaShare share = model.share_of(microbatches);
  const auto row = static_cast<std::size_t>(seq_len);
  // One slot per row of this replica's microbatches; rows past the last sequence stay unused.
  std::vector<double> log_likelihoods(static_cast<std::size_t>(share.size() * batch), 0.0);
  model.forward(
      share,
      [&](int64_t g, int32_t* inputs, int32_t* targets) {
        std::fill_n(inputs, row * static_cast<std::size_t>(batch), 0);
        std::fill_n(targets, row * static_cast<std::size_t>(batch), 0);
        for (int64_t s = g * batch; s < std::min((g + 1) * batch, count); ++s) {
          const std::vector<int32_t>& ids = sequences[static_cast<std::size_t>(s)].ids;
          const std::size_t offset = static_cast<std::size_t>(s - g * batch) * row;
          std::copy(ids.begin(), ids.end() - 1, inputs + offset);
          std::copy(ids.begin() + 1, ids.end(), targets + offset);
        }
      },
      [&](int64_t g, std::span<const float> losses) {
        for (int64_t s = g * batch; s < std::min((g + 1) * batch, count); ++s) {
          const ChoiceSequence& sequence = sequences[static_cast<std::size_t>(s)];
          // Target t predicts ids[t + 1]; the continuation's are the last `continuation` ones.
          const std::size_t end = sequence.ids.size() - 1;
          const std::size_t begin = end - static_cast<std::size_t>(sequence.continuation);
          const std::size_t offset = static_cast<std::size_t>(s - g * batch) * row;
          double log_likelihood = 0.0;
          for (std::size_t t = begin; t < end; ++t) log_likelihood -= losses[offset + t];
          log_likelihoods[static_cast<std::size_t>(s - share.begin * batch)] = log_likelihood;
        }
      },
      progress);
  std::vector<double> all = gather_item_values(
      log_likelihoods, static_cast<std::size_t>(share.begin * batch),
      static_cast<std::size_t>(microbatches * batch), model.parallel(), model.loss_holder());
  all.resize(static_cast<std::size_t>(count));

  TaskScore score;
  score.name = task.name;
  std::vector<bool> correct, correct_normalised;
  std::size_t next = 0;
  for (const ChoiceQuestion& question : task.questions) {
    QuestionResult result;
    result.line = question.line;
    result.answer = question.answer;
    for (std::size_t c = 0; c < question.choices.size(); ++c, ++next) {
      const ChoiceSequence& sequence = sequences[next];
      result.choices.push_back({all[next], sequence.continuation, sequence.bytes});
      result.truncated = result.truncated || sequence.truncated;
    }
    result.predicted =
        best_choice(result.choices, [](const ChoiceScore& s) { return s.log_likelihood; });
    result.predicted_normalised =
        best_choice(result.choices, [](const ChoiceScore& s) { return s.per_byte(); });
    correct.push_back(result.predicted == result.answer);
    correct_normalised.push_back(result.predicted_normalised == result.answer);
    score.truncated += result.truncated ? 1 : 0;
    score.questions.push_back(std::move(result));
  }
  score.accuracy = accuracy_of(correct);
  score.accuracy_normalised = accuracy_of(correct_normalised);
  return score;
}

}  // namespace tessera
