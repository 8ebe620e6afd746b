#include "parallel/parallel_context.hpp"

namespace tessera {

namespace {

int world_size_of(MPI_Comm comm) {
  int size = 0;
  TESSERA_MPI_CHECK(MPI_Comm_size(comm, &size));
  return size;
}

int world_rank_of(MPI_Comm comm) {
  int rank = 0;
  TESSERA_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  return rank;
}

MpiCommunicator split_axis(MPI_Comm world, GridAxis axis, const GridShape& shape,
                           const GridOrder& order) {
  const int rank = world_rank_of(world);
  const int key = coordinates_of(rank, shape, order).coordinate(axis);
  return MpiCommunicator(split(world, group_id(rank, axis, shape, order), key));
}

MpiCommunicator split_model(MPI_Comm world, const GridShape& shape, const GridOrder& order) {
  const int rank = world_rank_of(world);
  return MpiCommunicator(split(world, model_parallel_group_id(rank, shape, order), rank));
}

}  // namespace

// Members are initialised in declaration order: shape_ (resolved, may throw before any
// communicator exists), then the world duplicate, then the splits of that duplicate.
ParallelContext::ParallelContext(MPI_Comm world, GridShape shape, const GridOrder& order)
    : shape_(resolve_grid_shape(world_size_of(world), shape)),
      order_(order),
      coordinates_(coordinates_of(world_rank_of(world), shape_, order_)),
      world_(duplicate(world)),
      tp_(split_axis(world_.handle(), GridAxis::tp, shape_, order_)),
      dp_(split_axis(world_.handle(), GridAxis::dp, shape_, order_)),
      pp_(split_axis(world_.handle(), GridAxis::pp, shape_, order_)),
      model_(split_model(world_.handle(), shape_, order_)) {}

void ParallelContext::use_device_communicators(const DeviceCommunicatorFactory& make) {
  // Every rank builds them in the same order (tp, dp, pp): each build is collective over its
  // group, and a rank belongs to one group of each axis.
  device_tp_ = make(duplicate(tp_.handle()));
  device_dp_ = make(duplicate(dp_.handle()));
  device_pp_ = make(duplicate(pp_.handle()));
}

MPI_Comm ParallelContext::handle(GridAxis axis) const {
  switch (axis) {
    case GridAxis::tp:
      return tp_.handle();
    case GridAxis::dp:
      return dp_.handle();
    case GridAxis::pp:
      return pp_.handle();
  }
  return MPI_COMM_NULL;
}

NodePlacement node_placement(ParallelContext& parallel) {
  MPI_Comm shared = MPI_COMM_NULL;
  TESSERA_MPI_CHECK(MPI_Comm_split_type(parallel.world_handle(), MPI_COMM_TYPE_SHARED,
                                        parallel.world().rank(), MPI_INFO_NULL, &shared));
  const UniqueMpiComm node(shared);
  NodePlacement placement;
  TESSERA_MPI_CHECK(MPI_Comm_rank(node.get(), &placement.local_rank));
  TESSERA_MPI_CHECK(MPI_Comm_size(node.get(), &placement.local_ranks));
  return placement;
}

}  // namespace tessera
