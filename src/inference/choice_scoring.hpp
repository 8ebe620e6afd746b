// Zero-shot multiple choice scored by log-likelihood, as EleutherAI's lm-evaluation-harness
// scores HellaSwag, ARC and PIQA: each choice is the continuation of the context, its score the
// sum of log p(token) over the continuation's tokens; the prediction is the choice with the
// highest score per UTF-8 byte of its text (length-normalised, the harness's acc_norm) and,
// reported beside it, the highest score (acc).
//
// Text is encoded as the harness does: trailing whitespace of the context moves to the front
// of the continuation; context and context + continuation are encoded without special tokens,
// and the continuation's tokens are those of the whole past the context's. Sequences longer
// than seq_len + 1 tokens lose tokens from the left of the context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "inference/checkpoint_model.hpp"
#include "inference/choice_task.hpp"
#include "inference/validation_loss.hpp"
#include "io/data/tokenizer.hpp"

namespace tessera {

struct ChoiceScore {
  double log_likelihood = 0.0;  ///< sum of the natural log-probabilities of its tokens
  int tokens = 0;
  std::size_t bytes = 0;  ///< of the text scored (the choice, and whitespace moved to it)
  double per_byte() const { return log_likelihood / static_cast<double>(bytes); }
};

struct QuestionResult {
  int line = 0;
  int answer = 0;
  std::vector<ChoiceScore> choices;
  int predicted = 0;             ///< by log-likelihood
  int predicted_normalised = 0;  ///< by log-likelihood per byte
  bool truncated = false;        ///< the context lost tokens to fit seq_len
};

/// A proportion with the standard error of the mean of its 0/1 outcomes (sample standard
/// deviation over sqrt(n), as the harness reports it).
struct Accuracy {
  double value = 0.0;
  double standard_error = 0.0;
};
Accuracy accuracy_of(const std::vector<bool>& correct);

struct TaskScore {
  std::string name;
  std::vector<QuestionResult> questions;
  Accuracy accuracy;             ///< acc: by log-likelihood
  Accuracy accuracy_normalised;  ///< acc_norm: by log-likelihood per byte (the headline figure)
  int64_t truncated = 0;         ///< questions whose context was cut
};

/// Scores every question of `task` with `model`, each (question, choice) sequence computed by
/// one data-parallel replica. Collective over the model's world; every rank gets the result.
/// UsageError naming the file and line of a context or choice without tokens, or a choice
/// longer than model.seq_len tokens.
TaskScore score_choice_task(CheckpointModel& model, const Tokenizer& tokenizer,
                            const ChoiceTask& task, const WorkProgress& progress = {});

}  // namespace tessera
