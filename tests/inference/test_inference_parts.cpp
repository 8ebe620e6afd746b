// The parts of tessera eval and generate that need no model: sharing work over replicas, reading
// task files, accuracy and its standard error, the report's tables, sampling tokens.
#include <gtest/gtest.h>

#include <cmath>

#include "inference/choice_task.hpp"
#include "inference/eval_report.hpp"
#include "inference/token_sampler.hpp"
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

/// How often each token is drawn in `draws` draws from `logits`.
std::vector<double> frequencies(const SamplingOptions& options, const std::vector<float>& logits,
                                int draws) {
  TokenSampler sampler(options);
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) counts[static_cast<std::size_t>(sampler.next(logits))] += 1.0;
  for (double& count : counts) count /= draws;
  return counts;
}

/// softmax(logits / temperature) over the tokens in `kept`, zero elsewhere.
std::vector<double> expected(const std::vector<float>& logits, double temperature,
                             const std::vector<int>& kept) {
  std::vector<double> p(logits.size(), 0.0);
  double total = 0.0;
  for (int i : kept)
    total += p[static_cast<std::size_t>(i)] =
        std::exp(logits[static_cast<std::size_t>(i)] / temperature);
  for (double& value : p) value /= total;
  return p;
}

TEST(TokenSampler, DrawsFromTheFilteredSoftmax) {
  // Sorted: token 3 (2.0), 0 (1.0), 4 (0.5), 1 (0.0), 2 (-1.0), 5 (-3.0). At temperature 1 the
  // probabilities are .561 .206 .125 .076 .028 .004 (cumulative .561 .767 .892 ...); among the
  // top four, .579 .213 ... (cumulative .579 .792 ...).
  const std::vector<float> logits{1.0f, 0.0f, -1.0f, 2.0f, 0.5f, -3.0f};
  constexpr int kDraws = 200000;  // a fixed seed: the same draws every run
  struct Case {
    SamplingOptions options;
    std::vector<int> kept;
  };
  const Case cases[] = {
      {{1.0, 0, 1.0, 1}, {0, 1, 2, 3, 4, 5}},
      {{0.5, 0, 1.0, 2}, {0, 1, 2, 3, 4, 5}},
      {{1.0, 2, 1.0, 3}, {3, 0}},
      {{1.0, 0, 0.8, 4}, {3, 0, 4}},  // .767 < .8 <= .892: the third joins
      {{1.0, 4, 0.7, 5}, {3, 0}},     // top-k, then top-p among those four: .579 < .7 <= .792
      {{1.0, 0, 0.5, 6}, {3}},        // the most likely alone reaches .5
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "temperature " << c.options.temperature << " top_k "
                                      << c.options.top_k << " top_p " << c.options.top_p);
    const std::vector<double> got = frequencies(c.options, logits, kDraws);
    const std::vector<double> want = expected(logits, c.options.temperature, c.kept);
    for (std::size_t i = 0; i < logits.size(); ++i) {
      // Four standard deviations of a frequency over kDraws draws.
      EXPECT_NEAR(got[i], want[i], 4.0 * std::sqrt(want[i] * (1 - want[i]) / kDraws) + 1e-12)
          << "token " << i;
    }
  }
}

TEST(TokenSampler, GreedyAndSeeds) {
  const std::vector<float> logits{0.5f, 3.0f, 3.0f, -1.0f};
  TokenSampler greedy({0.0, 0, 1.0, 9});
  EXPECT_EQ(greedy.next(logits), 1);  // the first of equals
  TokenSampler a({1.0, 0, 1.0, 42}), b({1.0, 0, 1.0, 42}), c({1.0, 0, 1.0, 43});
  std::vector<int32_t> from_a, from_b, from_c;
  for (int i = 0; i < 64; ++i) {
    from_a.push_back(a.next(logits));
    from_b.push_back(b.next(logits));
    from_c.push_back(c.next(logits));
  }
  EXPECT_EQ(from_a, from_b);
  EXPECT_NE(from_a, from_c);
}

TEST(TokenSampler, RefusesOptionsOutOfRange) {
  EXPECT_NE(usage_error_message([] {
              check_sampling({1.0, 0, 0.0, 0});
            }).find("--top-p 0"),
            std::string::npos);
  EXPECT_NE(usage_error_message([] {
              check_sampling({1.0, 0, 1.01, 0});
            }).find("(0, 1]"),
            std::string::npos);
  EXPECT_NE(usage_error_message([] {
              check_sampling({-0.5, 0, 1.0, 0});
            }).find("--temperature"),
            std::string::npos);
  EXPECT_NE(usage_error_message([] {
              check_sampling({1.0, -2, 1.0, 0});
            }).find("--top-k"),
            std::string::npos);
  EXPECT_NO_THROW(check_sampling({0.0, 0, 1.0, 0}));
}

}  // namespace
}  // namespace tessera
