// Everything a rank needs to know about the parallel run: its grid position and one
// communicator per group. Built once, after the configuration is validated, and passed
// explicitly to layers, schedules and I/O (no globals).
#pragma once

#include <mpi.h>

#include "parallel/mpi_communicator.hpp"
#include "parallel/process_grid.hpp"

namespace tessera {

class ParallelContext {
 public:
  /// Splits `world` (every rank of the job calls this, collectively) into the groups of
  /// process_grid.hpp. `shape.dp = 0` is derived from the size of `world`; a shape that does
  /// not match throws UsageError on every rank. Each group communicator ranks its members by
  /// their coordinate on the axis (tp().rank() == coordinates().tp, and so on); the
  /// model-parallel communicator ranks them by world rank.
  ParallelContext(MPI_Comm world, GridShape shape, const GridOrder& order = GridOrder());

  const GridShape& shape() const { return shape_; }
  const GridOrder& order() const { return order_; }
  const GridCoordinates& coordinates() const { return coordinates_; }
  int world_rank() const { return world_.rank(); }

  Communicator& world() { return world_; }  ///< a duplicate of the world passed in
  Communicator& tp() { return tp_; }        ///< tensor-parallel peers: same dp and pp
  Communicator& dp() { return dp_; }        ///< data-parallel replicas: same tp and pp
  Communicator& pp() { return pp_; }        ///< pipeline stages: same tp and dp
  Communicator& model() { return model_; }  ///< one model replica: same dp (tp x pp ranks)

  /// The MPI handles, for code that needs MPI itself (parallel HDF5, tests).
  MPI_Comm world_handle() const { return world_.handle(); }
  MPI_Comm handle(GridAxis axis) const;
  MPI_Comm model_handle() const { return model_.handle(); }

 private:
  GridShape shape_;
  GridOrder order_;
  GridCoordinates coordinates_;
  MpiCommunicator world_;
  MpiCommunicator tp_;
  MpiCommunicator dp_;
  MpiCommunicator pp_;
  MpiCommunicator model_;
};

}  // namespace tessera
