// Zero-shot multiple-choice tasks in the shape HellaSwag, ARC and PIQA take when written out
// as JSON Lines: one question per line,
//   {"context": "The capital of France is", "choices": [" Paris", " Rome"], "answer": 0}
// (other keys, such as an id, are ignored; blank lines are skipped).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tessera {

struct ChoiceQuestion {
  std::string context;
  std::vector<std::string> choices;
  int answer = 0;  ///< index of the right choice
  int line = 0;    ///< in the task file, from 1
};

struct ChoiceTask {
  std::string name;  ///< the file's name without .jsonl
  std::filesystem::path file;
  std::vector<ChoiceQuestion> questions;
};

/// Reads a task file. UsageError naming the file and line for a line that is not a JSON object,
/// lacks "context" (a string), "choices" (two or more strings) or "answer" (an index into
/// them), and for a file that cannot be read or holds no question.
ChoiceTask read_choice_task(const std::filesystem::path& file);

}  // namespace tessera
