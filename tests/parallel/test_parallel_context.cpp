// ParallelContext: its communicators hold exactly the ranks process_grid.hpp says, for every
// layout of the world; run at 1, 2, 4 and 8 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "core/error.hpp"
#include "parallel/parallel_context.hpp"

namespace tessera {
namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

/// Every (dp, tp, pp) with dp x tp x pp = n.
std::vector<GridShape> shapes_of(int n) {
  std::vector<GridShape> shapes;
  for (int tp = 1; tp <= n; ++tp) {
    for (int pp = 1; pp <= n; ++pp) {
      if (n % (tp * pp) == 0) shapes.push_back({.dp = n / (tp * pp), .tp = tp, .pp = pp});
    }
  }
  return shapes;
}

/// The world ranks of the members of `comm`, in the order of their rank in `comm`.
std::vector<int> world_ranks_in(MPI_Comm comm) {
  int size = 0;
  MPI_Comm_size(comm, &size);
  std::vector<int> ranks(static_cast<std::size_t>(size), -1);
  const int mine = world_rank();
  MPI_Allgather(&mine, 1, MPI_INT, ranks.data(), 1, MPI_INT, comm);
  return ranks;
}

TEST(ParallelContext, CommunicatorsHoldExactlyTheGroupsOfTheGrid) {
  const int rank = world_rank();
  for (const char* order_text : {"tp-dp-pp", "pp-dp-tp", "dp-pp-tp"}) {
    const GridOrder order(order_text);
    for (const GridShape& shape : shapes_of(world_size())) {
      SCOPED_TRACE(std::string(order_text) + " dp=" + std::to_string(shape.dp) +
                   " tp=" + std::to_string(shape.tp) + " pp=" + std::to_string(shape.pp));
      ParallelContext context(MPI_COMM_WORLD, shape, order);
      EXPECT_EQ(context.shape(), shape);
      EXPECT_EQ(context.coordinates(), coordinates_of(rank, shape, order));
      EXPECT_EQ(context.world_rank(), rank);
      EXPECT_EQ(world_ranks_in(context.world_handle()),
                group_members(rank, GridAxis::dp, {world_size(), 1, 1}, GridOrder()));
      for (GridAxis axis : {GridAxis::tp, GridAxis::dp, GridAxis::pp}) {
        SCOPED_TRACE(std::string(axis_name(axis)));
        EXPECT_EQ(world_ranks_in(context.handle(axis)), group_members(rank, axis, shape, order));
      }
      EXPECT_EQ(world_ranks_in(context.model_handle()),
                model_parallel_group_members(rank, shape, order));
      // The Communicator views agree with the handles.
      EXPECT_EQ(context.tp().rank(), context.coordinates().tp);
      EXPECT_EQ(context.dp().rank(), context.coordinates().dp);
      EXPECT_EQ(context.pp().rank(), context.coordinates().pp);
      EXPECT_EQ(context.tp().size(), shape.tp);
      EXPECT_EQ(context.model().size(), shape.tp * shape.pp);
      EXPECT_EQ(context.world().size(), world_size());
    }
  }
}

TEST(ParallelContext, CollectivesStayInsideTheirGroup) {
  const int n = world_size();
  const GridShape shape =
      n >= 4 ? GridShape{.dp = n / 4, .tp = 2, .pp = 2} : GridShape{.dp = 1, .tp = n, .pp = 1};
  ParallelContext context(MPI_COMM_WORLD, shape);
  const int rank = world_rank();
  for (GridAxis axis : {GridAxis::tp, GridAxis::dp, GridAxis::pp}) {
    Communicator& comm = axis == GridAxis::tp   ? context.tp()
                         : axis == GridAxis::dp ? context.dp()
                                                : context.pp();
    float value = static_cast<float>(rank);
    comm.all_reduce_sum(&value, 1);
    int expected = 0;
    for (int member : group_members(rank, axis, shape, context.order())) expected += member;
    EXPECT_EQ(value, static_cast<float>(expected)) << axis_name(axis);
  }
}

TEST(ParallelContext, DerivesDpAndRejectsAShapeThatDoesNotFitTheWorld) {
  const int n = world_size();
  ParallelContext derived(MPI_COMM_WORLD, {.dp = 0, .tp = 1, .pp = 1});
  EXPECT_EQ(derived.shape().dp, n);
  // Every rank throws before any communicator exists, so none waits in MPI_Comm_split.
  EXPECT_THROW(ParallelContext(MPI_COMM_WORLD, {.dp = n, .tp = 2, .pp = 1}), UsageError);
}

}  // namespace
}  // namespace tessera
