// Everything a rank needs to know about the parallel run: its grid position and one
// communicator per group. Built once, after the configuration is validated, and passed
// explicitly to layers, schedules and I/O (no globals).
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>

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
  /// Tensor-parallel peers: same dp and pp. On the backend's buffers (device ones on a GPU).
  Communicator& tp() { return device_tp_ ? *device_tp_ : tp_; }
  /// Data-parallel replicas: same tp and pp. On the backend's buffers.
  Communicator& dp() { return device_dp_ ? *device_dp_ : dp_; }
  /// Pipeline stages: same tp and dp. On the backend's buffers.
  Communicator& pp() { return device_pp_ ? *device_pp_ : pp_; }
  Communicator& model() { return model_; }  ///< one model replica: same dp (tp x pp ranks)
  /// The data-parallel group over MPI for host buffers, also when dp() moves device buffers.
  Communicator& host_dp() { return dp_; }

  /// Builds a communicator over the ranks of an MPI group, for device buffers (NCCL).
  using DeviceCommunicatorFactory = std::function<std::unique_ptr<Communicator>(UniqueMpiComm)>;
  /// Moves tp(), dp() and pp() onto communicators `make` builds over the same ranks, so layers,
  /// the pipeline and the gradient reduction pass device buffers. world(), model() and
  /// host_dp() stay on MPI: they carry host values only. Collective over the world.
  void use_device_communicators(const DeviceCommunicatorFactory& make);

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
  std::unique_ptr<Communicator> device_tp_, device_dp_, device_pp_;
};

/// A rank's place among the ranks of its node (those sharing its memory).
struct NodePlacement {
  int local_rank = 0;
  int local_ranks = 1;
};

/// This rank's placement on its node. Collective over the world.
NodePlacement node_placement(ParallelContext& parallel);

}  // namespace tessera
