// The Communicator over NCCL, for device buffers (built with TESSERA_CUDA=ON).
//
// Ordering. The backend computes on one CUDA stream (`compute`). Each operation first makes the
// communicator's own stream wait for everything already queued on `compute`, so it sees the
// buffers as the model left them; then it enqueues the NCCL call on its stream. A non-blocking
// operation returns a Request whose `wait()` blocks the host until the operation has run; a
// blocking one is the same followed by `wait()`, so kernels queued after it see its result. The
// communicator's streams are separate from `compute`, so a data-parallel bucket all-reduce runs
// while backward keeps computing. (Waiting on the host costs a launch gap per blocking call;
// stream-side waits would avoid it once measurements on a GPU show it matters.)
//
// Bootstrap: rank 0 of the group creates an ncclUniqueId and MPI broadcasts it over the group;
// every rank must already have selected its device (cudaSetDevice). Host scalars (losses, norms)
// stay on MPI, over a duplicate of the group's MPI communicator.
//
// Point-to-point: NCCL has no tags and matches sends and receives between two ranks in the order
// they are issued; `tag` is accepted for the interface and ignored. Each send or receive is its
// own NCCL group on one point-to-point stream, so the pipeline executor's order of sends and
// receives between adjacent stages must pair up, which its schedule tables give.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "parallel/mpi_communicator.hpp"

namespace tessera {

class NcclCommunicator final : public Communicator {
 public:
  /// Collective over the ranks of `group`. `compute` is the stream the backend computes on.
  NcclCommunicator(UniqueMpiComm group, cudaStream_t compute);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }

  void all_reduce_sum(float* data, std::size_t count) override;
  void all_reduce_max(float* data, std::size_t count) override;
  void reduce_scatter_sum(const float* in, float* out, std::size_t count_per_rank) override;
  void all_gather(const float* in, float* out, std::size_t count_per_rank) override;
  void broadcast(float* data, std::size_t count, int root) override;
  void send(const float* data, std::size_t count, int destination, int tag = 0) override;
  void recv(float* data, std::size_t count, int source, int tag = 0) override;
  void barrier() override;
  void exchange(const float* out, float* in, std::size_t count, int peer) override;

  Request all_reduce_sum_async(float* data, std::size_t count) override;
  Request reduce_scatter_sum_async(const float* in, float* out,
                                   std::size_t count_per_rank) override;
  Request all_gather_async(const float* in, float* out, std::size_t count_per_rank) override;
  Request send_async(const float* data, std::size_t count, int destination, int tag = 0) override;
  Request recv_async(float* data, std::size_t count, int source, int tag = 0) override;

  double all_reduce_sum_double(double value) override;
  void all_reduce_sum_doubles(double* data, std::size_t count) override;
  double all_reduce_max_double(double value) override;

 private:
  /// Makes `stream` wait for the kernels queued on compute_ so far, enqueues `call(stream)` (an
  /// NCCL call) and returns a Request that completes when it has run.
  template <class Call>
  Request enqueue(cudaStream_t stream, Call call);

  MpiCommunicator host_;
  cudaStream_t compute_;
  cudaStream_t collective_stream_ = nullptr;
  cudaStream_t p2p_stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

}  // namespace tessera
