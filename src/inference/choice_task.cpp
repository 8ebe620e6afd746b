#include "inference/choice_task.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json_numbers.hpp"

namespace tessera {
namespace {

ChoiceQuestion parse_question(const std::string& text, const std::filesystem::path& file,
                              int line) {
  const auto fail = [&](const std::string& problem) {
    return UsageError(
        file.string() + ":" + std::to_string(line) + ": " + problem +
        R"(; each line is {"context": "...", "choices": ["...", "..."], "answer": N})");
  };
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) throw fail("not a JSON object");
  ChoiceQuestion question;
  question.line = line;
  const auto context = json.find("context");
  if (context == json.end() || !context->is_string()) throw fail("no \"context\" string");
  question.context = context->get<std::string>();
  const auto choices = json.find("choices");
  if (choices == json.end() || !choices->is_array() || choices->size() < 2) {
    throw fail("no \"choices\" list of two or more");
  }
  for (const nlohmann::json& choice : *choices) {
    if (!choice.is_string()) throw fail("a choice that is not a string");
    question.choices.push_back(choice.get<std::string>());
  }
  const auto answer = json.find("answer");
  const auto index =
      answer == json.end()
          ? std::nullopt
          : whole_number_in(*answer, 0, static_cast<int64_t>(question.choices.size()) - 1);
  if (!index) {
    throw fail("no \"answer\" index from 0 to " + std::to_string(question.choices.size() - 1));
  }
  question.answer = static_cast<int>(*index);
  return question;
}

}  // namespace

ChoiceTask read_choice_task(const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) {
    throw UsageError("task file " + file.string() + " not found; pass a JSON Lines file");
  }
  std::ifstream in(file);
  if (!in) throw UsageError("cannot read task file " + file.string() + "; check its permissions");
  ChoiceTask task;
  task.file = file;
  task.name = file.stem().string();
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    task.questions.push_back(parse_question(text, file, line));
  }
  if (in.bad()) throw UsageError("cannot read task file " + file.string());
  if (task.questions.empty()) {
    throw UsageError("task file " + file.string() + " holds no question; write one per line");
  }
  return task;
}

}  // namespace tessera
