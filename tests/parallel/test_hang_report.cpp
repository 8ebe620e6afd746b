// describe_hang: who is named stuck, who waiting, and how the ranks are listed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parallel/hang_watchdog.hpp"

namespace tessera {
namespace {

RankProgress rank_doing(int rank, int64_t step, const char* operation, int64_t marks, double idle_s,
                        double silent_s = 0.5) {
  return RankProgress{rank, step, operation, marks, idle_s, silent_s, "", false};
}

std::string describe(const std::vector<RankProgress>& ranks) {
  return describe_hang(ranks, 60, 5, "train.hang_timeout_s");
}

TEST(HangReport, SilentRanksAreStuckAndTheOthersWaitGroupedByWhatTheyDo) {
  const std::string line = describe({rank_doing(0, 12, "the loss all-reduce", 40, 70),
                                     rank_doing(1, 12, "the loss all-reduce", 40, 70),
                                     rank_doing(2, 11, "forward and backward", 35, 90, 88),
                                     rank_doing(3, 12, "the loss all-reduce", 40, 70),
                                     rank_doing(4, 12, "logging", 41, 69)});
  EXPECT_NE(line.find("hang: no rank has made progress for 60 s or more "
                      "(train.hang_timeout_s = 60)"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("stuck: rank 2 last heard in step 11, forward and backward, not "
                      "responding for 88 s"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("waiting for them: ranks 0-1, 3 in step 12, the loss all-reduce; rank 4 "
                      "in step 12, logging"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("look at the node of rank 2"), std::string::npos) << line;
}

TEST(HangReport, WhenEveryRankAnswersTheRanksFurthestBehindAreStuck) {
  // The stalled rank's idle time is no longer than the others' by more than milliseconds;
  // the count of operations begun tells it apart.
  const std::string line = describe({rank_doing(0, 3, "the loss all-reduce", 20, 61.0),
                                     rank_doing(1, 3, "the loss all-reduce", 20, 61.0),
                                     rank_doing(2, 3, "forward and backward", 19, 61.0),
                                     rank_doing(3, 3, "reading the step's tokens", 18, 61.0)});
  EXPECT_NE(line.find("stuck: rank 3 in step 3, reading the step's tokens, no progress for 61 s"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("waiting for them: ranks 0-1 in step 3, the loss all-reduce; rank 2 in "
                      "step 3, forward and backward"),
            std::string::npos)
      << line;
}

TEST(HangReport, RanksLevelWithEachOtherAreAllNamedAndOneRankAlone) {
  const std::string tied =
      describe({rank_doing(0, 7, "checkpoint", 30, 65), rank_doing(1, 7, "checkpoint", 30, 65),
                rank_doing(2, 7, "checkpoint", 30, 65)});
  EXPECT_NE(tied.find("stuck: ranks 0-2 in step 7, checkpoint"), std::string::npos) << tied;
  EXPECT_EQ(tied.find("waiting"), std::string::npos) << tied;

  const std::string alone = describe({rank_doing(0, 0, "", 0, 61)});
  EXPECT_NE(alone.find("stuck: rank 0 before its first step"), std::string::npos) << alone;
}

TEST(HangReport, NamesTheNodesOfTheStuckRanks) {
  std::vector<RankProgress> ranks{rank_doing(0, 12, "the loss all-reduce", 40, 70),
                                  rank_doing(1, 12, "the loss all-reduce", 40, 70),
                                  rank_doing(2, 11, "forward and backward", 35, 90, 88),
                                  rank_doing(3, 11, "forward and backward", 35, 90, 88)};
  const char* hosts[] = {"node1", "node1", "node2", "node2"};
  for (std::size_t r = 0; r < ranks.size(); ++r) ranks[r].host = hosts[r];
  const std::string line = describe(ranks);
  EXPECT_NE(line.find("stuck: ranks 2-3 on node2 last heard in step 11, forward and backward"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("waiting for them: ranks 0-1 in step 12"), std::string::npos) << line;

  // Ranks stopped before their first heartbeat reached rank 0: nothing is known of them, and
  // the line says so instead of guessing "before its first step".
  ranks[2].never_heard = ranks[3].never_heard = true;
  const std::string unknown = describe(ranks);
  EXPECT_NE(unknown.find("stuck: ranks 2-3 on node2 not heard from at all, not responding for "
                         "88 s"),
            std::string::npos)
      << unknown;
  EXPECT_NE(line.find("look at node2 (ranks 2-3)"), std::string::npos) << line;
}

}  // namespace
}  // namespace tessera
