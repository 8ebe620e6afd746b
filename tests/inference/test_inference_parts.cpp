// The parts of tessera eval that need no model: sharing work over replicas, reading task files,
// accuracy and its standard error, the report's tables.
#include <gtest/gtest.h>

#include <cmath>

#include "inference/choice_task.hpp"
#include "inference/eval_report.hpp"
#include "tests/support/file_test_util.hpp"
#include "train/step_accounting.hpp"

namespace tessera {
namespace {

using tessera::testing::TempDir;
using tessera::testing::usage_error_message;
using tessera::testing::write_file;

TEST(ReplicaShare, EveryItemOnceContiguousAndEven) {
  for (int64_t count : {0, 1, 3, 7, 16, 1000}) {
    for (int replicas : {1, 2, 3, 8}) {
      int64_t next = 0, smallest = count, largest = 0;
      for (int r = 0; r < replicas; ++r) {
        const ReplicaShare share = replica_share(count, replicas, r);
        EXPECT_EQ(share.begin, next) << count << " over " << replicas;
        next = share.end;
        smallest = std::min(smallest, share.size());
        largest = std::max(largest, share.size());
      }
      EXPECT_EQ(next, count);
      EXPECT_LE(largest - smallest, 1);
    }
  }
}

TEST(Accuracy, ProportionAndSampleStandardError) {
  const Accuracy a = accuracy_of({true, false, true, true});
  EXPECT_DOUBLE_EQ(a.value, 0.75);
  // Sample standard deviation of 1,0,1,1 (sqrt(0.25)) over sqrt(4).
  EXPECT_NEAR(a.standard_error, std::sqrt(0.75 * 0.25 / 3.0), 1e-15);
  EXPECT_DOUBLE_EQ(accuracy_of({true}).standard_error, 0.0);
  EXPECT_DOUBLE_EQ(accuracy_of({}).value, 0.0);
}

TEST(ChoiceTask, ReadsQuestionsSkippingBlankLines) {
  TempDir dir;
  const auto file = dir.path() / "capitals.jsonl";
  write_file(file,
             R"({"context": "Paris is in", "choices": [" France", " Spain"], "answer": 0, "id": 7})"
             "\n\n"
             R"({"context": "Rome is in", "choices": [" France", " Italy", " Chad"], "answer": 1})"
             "\n");
  const ChoiceTask task = read_choice_task(file);
  EXPECT_EQ(task.name, "capitals");
  ASSERT_EQ(task.questions.size(), 2u);
  EXPECT_EQ(task.questions[1].line, 3);
  EXPECT_EQ(task.questions[1].choices.size(), 3u);
  EXPECT_EQ(task.questions[1].answer, 1);
}

TEST(ChoiceTask, BadLinesNameFileLineAndProblem) {
  TempDir dir;
  const auto file = dir.path() / "bad.jsonl";
  const std::pair<const char*, const char*> cases[] = {
      {R"({"context": "a", "choices": [" b", " c"]})", "\"answer\""},
      {R"({"context": "a", "choices": [" b", " c"], "answer": 2})", "from 0 to 1"},
      {R"({"context": "a", "choices": [" b"], "answer": 0})", "two or more"},
      {R"({"context": 5, "choices": [" b", " c"], "answer": 0})", "\"context\""},
      {R"({"context": "a", "choices": [" b", 3], "answer": 0})", "not a string"},
      {R"({"context": "a", "choices": [" b", " c"], "answer": 0.5})", "\"answer\""},
      {"not json", "not a JSON object"},
  };
  for (const auto& [line, words] : cases) {
    write_file(file, std::string(R"({"context": "x", "choices": ["y", "z"], "answer": 1})") + "\n" +
                         line + "\n");
    const std::string message = usage_error_message([&] { read_choice_task(file); });
    EXPECT_NE(message.find(file.string() + ":2: "), std::string::npos) << message;
    EXPECT_NE(message.find(words), std::string::npos) << message;
  }
  write_file(file, "\n\n");
  EXPECT_NE(usage_error_message([&] { read_choice_task(file); }).find("holds no question"),
            std::string::npos);
  EXPECT_NE(
      usage_error_message([&] { read_choice_task(dir.path() / "none.jsonl"); }).find("not found"),
      std::string::npos);
}

TEST(EvalReport, TablesAndJsonCarryEveryFigure) {
  EvalReport report;
  report.checkpoint = "run/checkpoints/step_000000010.h5";
  report.step = 10;
  report.layout = "dp=1 tp=1 pp=1";
  report.sources.push_back({"data/a", 3, 192, std::log(4.0)});
  TaskScore task;
  task.name = "capitals";
  QuestionResult question;
  question.choices = {{-2.0, 2, 7}, {-3.0, 1, 3}};
  task.questions = {question};
  task.accuracy = {1.0, 0.0};
  task.accuracy_normalised = {0.5, 0.25};
  report.tasks.push_back(task);
  const std::string markdown = to_markdown(report);
  EXPECT_NE(markdown.find("| data/a | 3 | 192 | 1.3863 | 4.000 |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| capitals | 1 | 50.0 ± 25.0 | 100.0 ± 0.0 | 0 |"), std::string::npos)
      << markdown;
  const nlohmann::json json = to_json(report);
  EXPECT_DOUBLE_EQ(json["validation"][0]["perplexity"].get<double>(), 4.0);
  EXPECT_EQ(json["tasks"][0]["scores"][0]["choices"][1]["bytes"], 3);
  EXPECT_DOUBLE_EQ(json["tasks"][0]["accuracy_normalised"]["standard_error"].get<double>(), 0.25);
}

}  // namespace
}  // namespace tessera
