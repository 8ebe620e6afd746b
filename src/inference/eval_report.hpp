// What `tessera eval` found, as JSON (for scripts and tables of many runs) and as Markdown (for
// a model card or a proposal).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "inference/choice_scoring.hpp"
#include "inference/validation_loss.hpp"

namespace tessera {

struct EvalReport {
  std::filesystem::path checkpoint;
  int step = 0;
  std::string layout;  ///< "dp=2 tp=1 pp=1"
  std::vector<SourceLoss> sources;
  std::vector<TaskScore> tasks;
};

/// Every figure, and each question's scores.
nlohmann::json to_json(const EvalReport& report);

/// Two tables: validation loss and perplexity per source; accuracy (± standard error) per task.
std::string to_markdown(const EvalReport& report);

}  // namespace tessera
