#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "parallel/process_grid.hpp"

namespace tessera {
namespace {

struct Layout {
  GridShape shape;
  const char* order;
};

// Many shapes, every order, up to 4096 = 8 x 8 x 64 ranks.
std::vector<Layout> layouts() {
  const std::vector<GridShape> shapes = {{1, 1, 1},  {2, 1, 1}, {1, 2, 1},  {1, 1, 2}, {2, 2, 2},
                                         {3, 2, 1},  {1, 4, 3}, {5, 3, 2},  {4, 8, 2}, {16, 8, 4},
                                         {2, 8, 16}, {7, 1, 5}, {64, 8, 8}, {8, 8, 64}};
  const std::vector<const char*> orders = {"tp-dp-pp", "tp-pp-dp", "dp-tp-pp",
                                           "dp-pp-tp", "pp-tp-dp", "pp-dp-tp"};
  std::vector<Layout> all;
  for (const GridShape& shape : shapes) {
    for (const char* order : orders) all.push_back({shape, order});
  }
  return all;
}

std::string describe(const Layout& layout) {
  return "dp=" + std::to_string(layout.shape.dp) + " tp=" + std::to_string(layout.shape.tp) +
         " pp=" + std::to_string(layout.shape.pp) + " order=" + layout.order;
}

constexpr GridAxis kAxes[] = {GridAxis::tp, GridAxis::dp, GridAxis::pp};

TEST(ProcessGrid, RankOfInvertsCoordinatesOf) {
  for (const Layout& layout : layouts()) {
    SCOPED_TRACE(describe(layout));
    const GridOrder order(layout.order);
    for (int rank = 0; rank < layout.shape.world_size(); ++rank) {
      const GridCoordinates c = coordinates_of(rank, layout.shape, order);
      ASSERT_TRUE(c.dp >= 0 && c.dp < layout.shape.dp && c.tp >= 0 && c.tp < layout.shape.tp &&
                  c.pp >= 0 && c.pp < layout.shape.pp);
      ASSERT_EQ(rank_of(c, layout.shape, order), rank);
    }
  }
}

TEST(ProcessGrid, EveryAxisPartitionsTheWorldIntoGroupsOfTheAxisSize) {
  for (const Layout& layout : layouts()) {
    SCOPED_TRACE(describe(layout));
    const GridOrder order(layout.order);
    const int world = layout.shape.world_size();
    for (GridAxis axis : kAxes) {
      SCOPED_TRACE(std::string(axis_name(axis)));
      std::vector<int> times_seen(static_cast<std::size_t>(world), 0);
      for (int rank = 0; rank < world; ++rank) {
        const std::vector<int> members = group_members(rank, axis, layout.shape, order);
        ASSERT_EQ(static_cast<int>(members.size()), layout.shape.size(axis));
        ASSERT_TRUE(std::is_sorted(members.begin(), members.end()));
        // The rank's index in its group is its coordinate on the axis.
        const int index = coordinates_of(rank, layout.shape, order).coordinate(axis);
        ASSERT_EQ(members[static_cast<std::size_t>(index)], rank);
        ASSERT_EQ(group_id(rank, axis, layout.shape, order), members.front());
        // Counting each group once, from its first member, every rank appears exactly once;
        // every member names the same group.
        if (members.front() != rank) continue;
        for (int m : members) {
          ++times_seen[static_cast<std::size_t>(m)];
          ASSERT_EQ(group_members(m, axis, layout.shape, order), members);
        }
      }
      ASSERT_EQ(std::count(times_seen.begin(), times_seen.end(), 1), world);
    }
  }
}

TEST(ProcessGrid, ModelParallelGroupsAreTheRanksOfOneReplica) {
  for (const Layout& layout : layouts()) {
    SCOPED_TRACE(describe(layout));
    const GridOrder order(layout.order);
    const int world = layout.shape.world_size();
    std::vector<int> times_seen(static_cast<std::size_t>(world), 0);
    for (int rank = 0; rank < world; ++rank) {
      const std::vector<int> members = model_parallel_group_members(rank, layout.shape, order);
      ASSERT_EQ(static_cast<int>(members.size()), layout.shape.tp * layout.shape.pp);
      ASSERT_TRUE(std::is_sorted(members.begin(), members.end()));
      ASSERT_EQ(model_parallel_group_id(rank, layout.shape, order),
                rank_of({coordinates_of(rank, layout.shape, order).dp, 0, 0}, layout.shape, order));
      const int dp = coordinates_of(rank, layout.shape, order).dp;
      for (int m : members) ASSERT_EQ(coordinates_of(m, layout.shape, order).dp, dp);
      if (members.front() == rank) {
        for (int m : members) ++times_seen[static_cast<std::size_t>(m)];
      }
    }
    ASSERT_EQ(std::count(times_seen.begin(), times_seen.end(), 1), world);
  }
}

TEST(ProcessGrid, DefaultOrderKeepsTensorParallelGroupsOnConsecutiveRanks) {
  const GridShape shape{.dp = 8, .tp = 8, .pp = 64};
  const GridOrder order;
  EXPECT_EQ(order.str(), "tp-dp-pp");
  for (int rank = 0; rank < shape.world_size(); ++rank) {
    const std::vector<int> tp = group_members(rank, GridAxis::tp, shape, order);
    std::vector<int> consecutive(8);
    std::iota(consecutive.begin(), consecutive.end(), rank - rank % 8);
    ASSERT_EQ(tp, consecutive);
  }
  // dp peers are tp ranks apart; pipeline stages tp x dp ranks apart.
  EXPECT_EQ(group_members(9, GridAxis::dp, shape, order),
            (std::vector<int>{1, 9, 17, 25, 33, 41, 49, 57}));
  EXPECT_EQ(group_members(9, GridAxis::pp, shape, order)[1], 9 + 64);
  EXPECT_EQ(coordinates_of(4095, shape, order), (GridCoordinates{.dp = 7, .tp = 7, .pp = 63}));
}

TEST(ProcessGrid, SmallExampleFromTheHeader) {
  const GridShape shape{.dp = 2, .tp = 2, .pp = 2};
  const GridOrder order;
  EXPECT_EQ(group_members(5, GridAxis::tp, shape, order), (std::vector<int>{4, 5}));
  EXPECT_EQ(group_members(5, GridAxis::dp, shape, order), (std::vector<int>{5, 7}));
  EXPECT_EQ(group_members(5, GridAxis::pp, shape, order), (std::vector<int>{1, 5}));
  EXPECT_EQ(model_parallel_group_members(5, shape, order), (std::vector<int>{0, 1, 4, 5}));
}

TEST(GridOrder, ParsesPermutationsAndRejectsEverythingElse) {
  EXPECT_EQ(GridOrder("pp-tp-dp").str(), "pp-tp-dp");
  EXPECT_EQ(GridOrder("pp-tp-dp").axis(0), GridAxis::pp);
  for (const char* bad : {"", "tp", "tp-dp", "tp-dp-dp", "tp-dp-pp-tp", "tp-dp-pp-", "tp,dp,pp",
                          "TP-DP-PP", "tp-dp-xx"}) {
    EXPECT_THROW(GridOrder{bad}, UsageError) << bad;
  }
}

}  // namespace
}  // namespace tessera
