#include "inference/eval_report.hpp"

#include <fmt/format.h>

namespace tessera {
namespace {

nlohmann::json accuracy_json(const Accuracy& accuracy) {
  return {{"value", accuracy.value}, {"standard_error", accuracy.standard_error}};
}

nlohmann::json question_json(const QuestionResult& question) {
  nlohmann::json choices = nlohmann::json::array();
  for (const ChoiceScore& choice : question.choices) {
    choices.push_back({{"log_likelihood", choice.log_likelihood},
                       {"tokens", choice.tokens},
                       {"bytes", choice.bytes}});
  }
  return {
      {"line", question.line},           {"answer", question.answer},
      {"predicted", question.predicted}, {"predicted_normalised", question.predicted_normalised},
      {"truncated", question.truncated}, {"choices", choices}};
}

/// "61.2 ± 1.5" (percent).
std::string percent(const Accuracy& accuracy) {
  return fmt::format("{:.1f} ± {:.1f}", 100 * accuracy.value, 100 * accuracy.standard_error);
}

}  // namespace

nlohmann::json to_json(const EvalReport& report) {
  nlohmann::json sources = nlohmann::json::array();
  for (const SourceLoss& source : report.sources) {
    sources.push_back({{"source", source.source},
                       {"windows", source.windows},
                       {"tokens", source.tokens},
                       {"loss", source.loss},
                       {"perplexity", source.perplexity()}});
  }
  nlohmann::json tasks = nlohmann::json::array();
  for (const TaskScore& task : report.tasks) {
    nlohmann::json questions = nlohmann::json::array();
    for (const QuestionResult& question : task.questions)
      questions.push_back(question_json(question));
    tasks.push_back({{"task", task.name},
                     {"questions", task.questions.size()},
                     {"accuracy_normalised", accuracy_json(task.accuracy_normalised)},
                     {"accuracy", accuracy_json(task.accuracy)},
                     {"truncated", task.truncated},
                     {"scores", questions}});
  }
  return {{"checkpoint", report.checkpoint.string()},
          {"step", report.step},
          {"layout", report.layout},
          {"validation", sources},
          {"tasks", tasks}};
}

std::string to_markdown(const EvalReport& report) {
  std::string text =
      fmt::format("## Evaluation of {} (step {})\n", report.checkpoint.string(), report.step);
  if (!report.sources.empty()) {
    text +=
        "\n| validation source | windows | tokens | loss (nats/token) | perplexity |\n"
        "|---|---:|---:|---:|---:|\n";
    for (const SourceLoss& source : report.sources) {
      text += fmt::format("| {} | {} | {} | {:.4f} | {:.3f} |\n", source.source, source.windows,
                          source.tokens, source.loss, source.perplexity());
    }
  }
  if (!report.tasks.empty()) {
    text +=
        "\n| task | questions | acc_norm % | acc % | contexts cut |\n"
        "|---|---:|---:|---:|---:|\n";
    for (const TaskScore& task : report.tasks) {
      text +=
          fmt::format("| {} | {} | {} | {} | {} |\n", task.name, task.questions.size(),
                      percent(task.accuracy_normalised), percent(task.accuracy), task.truncated);
    }
    text +=
        "\nacc_norm: the choice with the highest log-likelihood per byte; acc: the highest "
        "log-likelihood; ± one standard error.\n";
  }
  return text;
}

}  // namespace tessera
