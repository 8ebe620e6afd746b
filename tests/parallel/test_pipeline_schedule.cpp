#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "parallel/pipeline_schedule.hpp"

namespace tessera {
namespace {

struct Case {
  int stages;
  int microbatches;
  int chunks;
};

using ScheduleFn = std::function<StageSchedule(int stage, const Case&)>;

struct NamedSchedule {
  const char* name;
  ScheduleFn make;
  bool interleaved;
};

std::vector<NamedSchedule> schedules() {
  return {
      {"gpipe", [](int s, const Case& c) { return gpipe_schedule(c.stages, s, c.microbatches); },
       false},
      {"1f1b",
       [](int s, const Case& c) { return one_f_one_b_schedule(c.stages, s, c.microbatches); },
       false},
      {"interleaved",
       [](int s, const Case& c) {
         return interleaved_schedule(c.stages, s, c.microbatches, c.chunks);
       },
       true},
  };
}

// Every (p, m, v) with p <= 8, v <= 4 and m <= 4p that the schedule accepts.
std::vector<Case> cases(bool interleaved) {
  std::vector<Case> all;
  for (int p = 1; p <= 8; ++p) {
    for (int m = 1; m <= 4 * p; ++m) {
      if (!interleaved) {
        all.push_back({p, m, 1});
        continue;
      }
      for (int v = 1; v <= 4; ++v) {
        if (v == 1 || m % p == 0) all.push_back({p, m, v});
      }
    }
  }
  return all;
}

std::string describe(const char* name, const Case& c) {
  return std::string(name) + " p=" + std::to_string(c.stages) +
         " m=" + std::to_string(c.microbatches) + " v=" + std::to_string(c.chunks);
}

std::vector<StageSchedule> all_stages(const NamedSchedule& schedule, const Case& c) {
  std::vector<StageSchedule> tables;
  for (int s = 0; s < c.stages; ++s) tables.push_back(schedule.make(s, c));
  return tables;
}

TEST(PipelineSchedule, EveryForwardAndBackwardOnceAndBackwardAfterForward) {
  for (const NamedSchedule& schedule : schedules()) {
    for (const Case& c : cases(schedule.interleaved)) {
      SCOPED_TRACE(describe(schedule.name, c));
      for (int s = 0; s < c.stages; ++s) {
        const StageSchedule table = schedule.make(s, c);
        ASSERT_EQ(static_cast<int>(table.size()), 2 * c.microbatches * c.chunks);
        std::map<std::pair<int, int>, int> forward_at;
        std::map<std::pair<int, int>, int> backward_at;
        for (int i = 0; i < static_cast<int>(table.size()); ++i) {
          const Action& a = table[static_cast<std::size_t>(i)];
          ASSERT_TRUE(a.microbatch >= 0 && a.microbatch < c.microbatches);
          ASSERT_TRUE(a.chunk >= 0 && a.chunk < c.chunks);
          auto& seen = a.kind == ActionKind::forward ? forward_at : backward_at;
          ASSERT_TRUE(seen.emplace(std::pair{a.microbatch, a.chunk}, i).second);
        }
        ASSERT_EQ(static_cast<int>(forward_at.size()), c.microbatches * c.chunks);
        for (const auto& [key, position] : backward_at) {
          ASSERT_LT(forward_at.at(key), position);
        }
      }
    }
  }
}

TEST(PipelineSchedule, OneFOneBWarmsUpThenAlternatesWithBoundedMicrobatchesInFlight) {
  for (const Case& c : cases(false)) {
    SCOPED_TRACE(describe("1f1b", c));
    for (int s = 0; s < c.stages; ++s) {
      const StageSchedule table = one_f_one_b_schedule(c.stages, s, c.microbatches);
      const int warmup = std::min(c.stages - s - 1, c.microbatches);
      const int steady = c.microbatches - warmup;
      for (int i = 0; i < warmup; ++i) {
        ASSERT_EQ(table[static_cast<std::size_t>(i)].kind, ActionKind::forward);
      }
      for (int i = 0; i < 2 * steady; ++i) {
        ASSERT_EQ(table[static_cast<std::size_t>(warmup + i)].kind,
                  i % 2 == 0 ? ActionKind::forward : ActionKind::backward);
      }
      ASSERT_EQ(peak_in_flight(table, 1), std::vector<int>{std::min(c.stages - s, c.microbatches)});
    }
  }
}

TEST(PipelineSchedule, OneFOneBExampleTable) {
  std::string text;
  for (const Action& a : one_f_one_b_schedule(4, 0, 8)) {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "F" + string.
    text += a.kind == ActionKind::forward ? 'F' : 'B';
    text += std::to_string(a.microbatch);
    text += ' ';
  }
  EXPECT_EQ(text, "F0 F1 F2 F3 B0 F4 B1 F5 B2 F6 B3 F7 B4 B5 B6 B7 ");
  EXPECT_EQ(one_f_one_b_schedule(4, 3, 2), (StageSchedule{{ActionKind::forward, 0, 0},
                                                          {ActionKind::backward, 0, 0},
                                                          {ActionKind::forward, 1, 0},
                                                          {ActionKind::backward, 1, 0}}));
}

TEST(PipelineSchedule, InterleavedWarmUpAndMicrobatchGroups) {
  for (const Case& c : cases(true)) {
    if (c.chunks == 1) continue;
    SCOPED_TRACE(describe("interleaved", c));
    for (int s = 0; s < c.stages; ++s) {
      const StageSchedule table = interleaved_schedule(c.stages, s, c.microbatches, c.chunks);
      const auto first_backward = std::find_if(table.begin(), table.end(), [](const Action& a) {
        return a.kind == ActionKind::backward;
      });
      const int warmup =
          std::min(2 * (c.stages - s - 1) + (c.chunks - 1) * c.stages, c.microbatches * c.chunks);
      const int leading_forwards = static_cast<int>(first_backward - table.begin());
      ASSERT_EQ(leading_forwards, warmup + (warmup < c.microbatches * c.chunks ? 1 : 0));
      // The first forwards: microbatches 0..p-1 on chunk 0, then on chunk 1.
      ASSERT_EQ(table[0], (Action{ActionKind::forward, 0, 0}));
      if (c.microbatches * c.chunks > c.stages && warmup > c.stages) {
        ASSERT_EQ(table[static_cast<std::size_t>(c.stages)], (Action{ActionKind::forward, 0, 1}));
      }
    }
  }
  EXPECT_EQ(interleaved_schedule(4, 1, 8, 1), one_f_one_b_schedule(4, 1, 8));
}

TEST(PipelineSchedule, MicrobatchesInFlightPerChunk) {
  // GPipe holds every microbatch; interleaving counts each chunk's own. On 2 stages with 2
  // chunks and 4 microbatches stage 0 warms up with 4 forwards (0 and 1 on chunk 0, then on
  // chunk 1), then runs F2 and F3 on chunk 0 before chunk 0's first backward: 4 on chunk 0,
  // 2 on chunk 1. Stage 1 warms up with 2 (chunk 0), then F0 on chunk 1, B0 and F1 B1 on
  // chunk 1, then F2 on chunk 0 with 0 and 1 still there: 3 and 1.
  EXPECT_EQ(peak_in_flight(gpipe_schedule(4, 2, 6), 1), std::vector<int>{6});
  EXPECT_EQ(peak_in_flight(interleaved_schedule(2, 0, 4, 2), 2), (std::vector<int>{4, 2}));
  EXPECT_EQ(peak_in_flight(interleaved_schedule(2, 1, 4, 2), 2), (std::vector<int>{3, 1}));
  EXPECT_THROW(peak_in_flight(interleaved_schedule(2, 0, 4, 2), 1), InternalError);
}

TEST(PipelineSchedule, InterleavedRejectsMicrobatchesThatAreNotWholeGroups) {
  EXPECT_THROW(interleaved_schedule(4, 0, 6, 2), UsageError);
  EXPECT_THROW(interleaved_schedule(4, 0, 8, 0), UsageError);
  EXPECT_THROW(gpipe_schedule(4, 0, 0), UsageError);
  try {
    interleaved_schedule(4, 0, 6, 2);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("pick a multiple of 4"), std::string::npos) << e.what();
  }
}

TEST(PipelineSimulation, EverySchedulePipelineCompletesWithoutDeadlock) {
  for (const NamedSchedule& schedule : schedules()) {
    for (const Case& c : cases(schedule.interleaved)) {
      SCOPED_TRACE(describe(schedule.name, c));
      const PipelineSimulation run = simulate_pipeline(all_stages(schedule, c), c.chunks);
      ASSERT_TRUE(run.completed);
      ASSERT_DOUBLE_EQ(run.busy_per_stage, 3.0 * c.microbatches * c.chunks);
    }
  }
}

TEST(PipelineSimulation, DetectsADeadlock) {
  // Stage 0 waits for microbatch 0's gradient before sending microbatch 1 forward; stage 1
  // waits for microbatch 1 before it runs microbatch 0's backward.
  const std::vector<StageSchedule> tables = {{{ActionKind::forward, 0, 0},
                                              {ActionKind::backward, 0, 0},
                                              {ActionKind::forward, 1, 0},
                                              {ActionKind::backward, 1, 0}},
                                             {{ActionKind::forward, 0, 0},
                                              {ActionKind::forward, 1, 0},
                                              {ActionKind::backward, 0, 0},
                                              {ActionKind::backward, 1, 0}}};
  EXPECT_FALSE(simulate_pipeline(tables, 1).completed);
}

TEST(PipelineSimulation, BubbleOfGPipeAndOneFOneBMatchesTheFormula) {
  for (const NamedSchedule& schedule : schedules()) {
    if (schedule.interleaved) continue;
    for (const Case& c : cases(false)) {
      SCOPED_TRACE(describe(schedule.name, c));
      const PipelineSimulation run = simulate_pipeline(all_stages(schedule, c), 1);
      ASSERT_NEAR(run.bubble_fraction, theoretical_bubble_fraction(c.stages, c.microbatches),
                  1e-12);
    }
  }
  EXPECT_DOUBLE_EQ(theoretical_bubble_fraction(4, 8), 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(theoretical_bubble_fraction(4, 8, 2), 3.0 / 16.0);
}

TEST(PipelineSimulation, InterleavingShrinksTheBubble) {
  for (const Case& c : cases(true)) {
    if (c.chunks == 1) continue;
    SCOPED_TRACE(describe("interleaved", c));
    std::vector<StageSchedule> tables;
    for (int s = 0; s < c.stages; ++s) {
      tables.push_back(interleaved_schedule(c.stages, s, c.microbatches, c.chunks));
    }
    const PipelineSimulation run = simulate_pipeline(tables, c.chunks);
    ASSERT_NEAR(run.bubble_fraction,
                theoretical_bubble_fraction(c.stages, c.microbatches, c.chunks), 1e-12);
  }
}

}  // namespace
}  // namespace tessera
