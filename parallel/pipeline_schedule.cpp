#include "parallel/pipeline_schedule.hpp"

#include <algorithm>
#include <string>

#include "core/error.hpp"

namespace tessera {

namespace {

void check_pipeline(int stages, int stage, int microbatches) {
  if (stages < 1 || microbatches < 1) {
    throw UsageError("a pipeline needs at least 1 stage and 1 microbatch, got stages = " +
                     std::to_string(stages) + ", microbatches = " + std::to_string(microbatches));
  }
  TESSERA_CHECK(stage >= 0 && stage < stages,
                "stage " + std::to_string(stage) + " outside 0.." + std::to_string(stages - 1));
}

/// The k-th forward (or backward) of an interleaved stage, following Megatron: microbatches
/// in groups of p, each group through every chunk (backwards through the chunks in reverse).
Action interleaved_action(ActionKind kind, int k, int stages, int chunks_per_stage) {
  const int group_size = stages * chunks_per_stage;
  const int in_group = k % group_size;
  const int chunk = in_group / stages;
  return {.kind = kind,
          .microbatch = (k / group_size) * stages + in_group % stages,
          .chunk = kind == ActionKind::forward ? chunk : chunks_per_stage - 1 - chunk};
}

/// Where simulate_pipeline records when each (kind, microbatch, virtual stage) finished.
class FinishTimes {
 public:
  FinishTimes(int microbatches, int virtual_stages)
      : virtual_stages_(virtual_stages),
        times_(2 * static_cast<std::size_t>(microbatches * virtual_stages), -1.0) {}

  double& at(ActionKind kind, int microbatch, int virtual_stage) {
    const int index =
        (kind == ActionKind::forward ? 0 : 1) + 2 * (microbatch * virtual_stages_ + virtual_stage);
    return times_[static_cast<std::size_t>(index)];
  }

 private:
  int virtual_stages_;
  std::vector<double> times_;
};

int microbatch_count(const std::vector<StageSchedule>& tables) {
  int count = 0;
  for (const StageSchedule& table : tables) {
    for (const Action& action : table) {
      TESSERA_CHECK(action.microbatch >= 0, "negative microbatch in a schedule");
      count = std::max(count, action.microbatch + 1);
    }
  }
  return count;
}

}  // namespace

StageSchedule gpipe_schedule(int stages, int stage, int microbatches) {
  check_pipeline(stages, stage, microbatches);
  StageSchedule table;
  for (int mb = 0; mb < microbatches; ++mb) table.push_back({ActionKind::forward, mb, 0});
  for (int mb = 0; mb < microbatches; ++mb) table.push_back({ActionKind::backward, mb, 0});
  return table;
}

StageSchedule one_f_one_b_schedule(int stages, int stage, int microbatches) {
  check_pipeline(stages, stage, microbatches);
  const int warmup = std::min(stages - stage - 1, microbatches);
  const int steady = microbatches - warmup;
  StageSchedule table;
  for (int mb = 0; mb < warmup; ++mb) table.push_back({ActionKind::forward, mb, 0});
  for (int i = 0; i < steady; ++i) {
    table.push_back({ActionKind::forward, warmup + i, 0});
    table.push_back({ActionKind::backward, i, 0});
  }
  for (int mb = steady; mb < microbatches; ++mb) table.push_back({ActionKind::backward, mb, 0});
  return table;
}

StageSchedule interleaved_schedule(int stages, int stage, int microbatches, int chunks_per_stage) {
  check_pipeline(stages, stage, microbatches);
  if (chunks_per_stage < 1) {
    throw UsageError("chunks_per_stage = " + std::to_string(chunks_per_stage) +
                     " must be at least 1");
  }
  if (chunks_per_stage == 1) return one_f_one_b_schedule(stages, stage, microbatches);
  if (microbatches % stages != 0) {
    throw UsageError("the interleaved schedule needs microbatches divisible by pp, got " +
                     std::to_string(microbatches) + " microbatches for pp = " +
                     std::to_string(stages) + "; pick a multiple of " + std::to_string(stages));
  }
  const int total = microbatches * chunks_per_stage;
  const int warmup = std::min(2 * (stages - stage - 1) + (chunks_per_stage - 1) * stages, total);
  StageSchedule table;
  for (int k = 0; k < warmup; ++k) {
    table.push_back(interleaved_action(ActionKind::forward, k, stages, chunks_per_stage));
  }
  for (int k = 0; k < total - warmup; ++k) {
    table.push_back(interleaved_action(ActionKind::forward, warmup + k, stages, chunks_per_stage));
    table.push_back(interleaved_action(ActionKind::backward, k, stages, chunks_per_stage));
  }
  for (int k = total - warmup; k < total; ++k) {
    table.push_back(interleaved_action(ActionKind::backward, k, stages, chunks_per_stage));
  }
  return table;
}

std::vector<int> peak_in_flight(const StageSchedule& schedule, int chunks_per_stage) {
  std::vector<int> now(static_cast<std::size_t>(chunks_per_stage), 0), peak = now;
  for (const Action& action : schedule) {
    TESSERA_CHECK(action.chunk >= 0 && action.chunk < chunks_per_stage,
                  "chunk " + std::to_string(action.chunk) + " in a schedule of " +
                      std::to_string(chunks_per_stage) + " chunks per stage");
    int& in_flight = now[static_cast<std::size_t>(action.chunk)];
    in_flight += action.kind == ActionKind::forward ? 1 : -1;
    int& most = peak[static_cast<std::size_t>(action.chunk)];
    most = std::max(most, in_flight);
  }
  return peak;
}

double theoretical_bubble_fraction(int stages, int microbatches, int chunks_per_stage) {
  return static_cast<double>(stages - 1) / (static_cast<double>(chunks_per_stage) * microbatches);
}

PipelineSimulation simulate_pipeline(const std::vector<StageSchedule>& tables, int chunks_per_stage,
                                     double forward_cost, double backward_cost) {
  TESSERA_CHECK(!tables.empty() && chunks_per_stage >= 1, "simulate_pipeline needs stages");
  const int stages = static_cast<int>(tables.size());
  const int virtual_stages = stages * chunks_per_stage;
  FinishTimes finished(microbatch_count(tables), virtual_stages);
  std::vector<std::size_t> next(tables.size(), 0);
  std::vector<double> clock(tables.size(), 0.0);
  std::vector<double> busy(tables.size(), 0.0);
  // Each pass runs every action whose inputs have finished; a pass without progress while
  // actions remain is a deadlock. Finish times do not depend on the order of the passes.
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < stages; ++s) {
      const auto su = static_cast<std::size_t>(s);
      while (next[su] < tables[su].size()) {
        const Action& a = tables[su][next[su]];
        TESSERA_CHECK(a.chunk >= 0 && a.chunk < chunks_per_stage, "chunk outside the stage");
        const int vs = a.chunk * stages + s;
        const bool forward = a.kind == ActionKind::forward;
        double ready = clock[su];
        if (!forward) {
          const double own_forward = finished.at(ActionKind::forward, a.microbatch, vs);
          TESSERA_CHECK(own_forward >= 0, "backward before its forward on the same stage");
          ready = std::max(ready, own_forward);
        }
        const int input_stage = forward ? vs - 1 : vs + 1;
        if (input_stage >= 0 && input_stage < virtual_stages) {
          const double input = finished.at(a.kind, a.microbatch, input_stage);
          if (input < 0) break;  // not arrived yet
          ready = std::max(ready, input);
        }
        double& done = finished.at(a.kind, a.microbatch, vs);
        TESSERA_CHECK(done < 0, "an action appears twice in a schedule");
        const double cost = forward ? forward_cost : backward_cost;
        done = ready + cost;
        clock[su] = done;
        busy[su] += cost;
        ++next[su];
        progress = true;
      }
    }
  }
  PipelineSimulation result;
  result.completed = true;
  for (std::size_t s = 0; s < tables.size(); ++s) {
    result.completed = result.completed && next[s] == tables[s].size();
  }
  result.makespan = *std::max_element(clock.begin(), clock.end());
  result.busy_per_stage = *std::max_element(busy.begin(), busy.end());
  if (result.busy_per_stage > 0) {
    result.bubble_fraction = (result.makespan - result.busy_per_stage) / result.busy_per_stage;
  }
  return result;
}

}  // namespace tessera
