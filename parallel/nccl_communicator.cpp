#include "parallel/nccl_communicator.hpp"

#include "backend/cuda/cuda_check.hpp"

namespace tessera {
namespace {

/// An event recorded on a stream; the host waits for it.
class EventPending final : public Request::Pending {
 public:
  explicit EventPending(cudaStream_t stream) {
    TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    TESSERA_CUDA_CHECK(cudaEventRecord(event_, stream));
  }
  ~EventPending() override { cudaEventDestroy(event_); }
  EventPending(const EventPending&) = delete;
  EventPending& operator=(const EventPending&) = delete;
  void wait() override { TESSERA_CUDA_CHECK(cudaEventSynchronize(event_)); }

 private:
  cudaEvent_t event_ = nullptr;
};

/// `to` waits for the work queued on `from` so far, without blocking the host.
void order_after(cudaStream_t to, cudaStream_t from) {
  cudaEvent_t event = nullptr;
  TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  TESSERA_CUDA_CHECK(cudaEventRecord(event, from));
  TESSERA_CUDA_CHECK(cudaStreamWaitEvent(to, event, 0));
  TESSERA_CUDA_CHECK(cudaEventDestroy(event));  // released once the wait has been satisfied
}

ncclUniqueId shared_unique_id(const MpiCommunicator& group) {
  ncclUniqueId id{};
  if (group.rank() == 0) TESSERA_CUDA_CHECK(ncclGetUniqueId(&id));
  TESSERA_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, group.handle()));
  return id;
}

}  // namespace

NcclCommunicator::NcclCommunicator(UniqueMpiComm group, cudaStream_t compute)
    : host_(std::move(group)), compute_(compute) {
  TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&collective_stream_, cudaStreamNonBlocking));
  TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&p2p_stream_, cudaStreamNonBlocking));
  TESSERA_CUDA_CHECK(ncclCommInitRank(&comm_, host_.size(), shared_unique_id(host_), host_.rank()));
}

NcclCommunicator::~NcclCommunicator() {
  // Destructors must not throw: release what was acquired and ignore late failures.
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (p2p_stream_ != nullptr) cudaStreamDestroy(p2p_stream_);
  if (collective_stream_ != nullptr) cudaStreamDestroy(collective_stream_);
}

template <class Call>
Request NcclCommunicator::enqueue(cudaStream_t stream, Call call) {
  order_after(stream, compute_);  // see the buffers as the kernels queued so far leave them
  TESSERA_CUDA_CHECK(call(stream));
  return Request(std::make_unique<EventPending>(stream));
}

void NcclCommunicator::all_reduce_sum(float* data, std::size_t count) {
  all_reduce_sum_async(data, count).wait();
}

void NcclCommunicator::all_reduce_max(float* data, std::size_t count) {
  enqueue(collective_stream_, [&](cudaStream_t s) {
    return ncclAllReduce(data, data, count, ncclFloat32, ncclMax, comm_, s);
  }).wait();
}

void NcclCommunicator::reduce_scatter_sum(const float* in, float* out, std::size_t count_per_rank) {
  reduce_scatter_sum_async(in, out, count_per_rank).wait();
}

void NcclCommunicator::all_gather(const float* in, float* out, std::size_t count_per_rank) {
  all_gather_async(in, out, count_per_rank).wait();
}

void NcclCommunicator::broadcast(float* data, std::size_t count, int root) {
  enqueue(collective_stream_, [&](cudaStream_t s) {
    return ncclBroadcast(data, data, count, ncclFloat32, root, comm_, s);
  }).wait();
}

void NcclCommunicator::send(const float* data, std::size_t count, int destination, int tag) {
  send_async(data, count, destination, tag).wait();
}

void NcclCommunicator::recv(float* data, std::size_t count, int source, int tag) {
  recv_async(data, count, source, tag).wait();
}

void NcclCommunicator::barrier() {
  // Host-side: every rank has reached this point, and every queued device operation is done.
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(compute_));
  TESSERA_MPI_CHECK(MPI_Barrier(host_.handle()));
}

void NcclCommunicator::exchange(const float* out, float* in, std::size_t count, int peer) {
  // One NCCL group: the send and the receive progress together, so neither rank waits for the
  // other to post its receive first.
  enqueue(p2p_stream_, [&](cudaStream_t s) {
    ncclResult_t status = ncclGroupStart();
    if (status == ncclSuccess) status = ncclSend(out, count, ncclFloat32, peer, comm_, s);
    if (status == ncclSuccess) status = ncclRecv(in, count, ncclFloat32, peer, comm_, s);
    const ncclResult_t ended = ncclGroupEnd();  // always close the group that was opened
    return status == ncclSuccess ? ended : status;
  }).wait();
}

Request NcclCommunicator::all_reduce_sum_async(float* data, std::size_t count) {
  return enqueue(collective_stream_, [&](cudaStream_t s) {
    return ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, s);
  });
}

Request NcclCommunicator::reduce_scatter_sum_async(const float* in, float* out,
                                                   std::size_t count_per_rank) {
  return enqueue(collective_stream_, [&](cudaStream_t s) {
    return ncclReduceScatter(in, out, count_per_rank, ncclFloat32, ncclSum, comm_, s);
  });
}

Request NcclCommunicator::all_gather_async(const float* in, float* out,
                                           std::size_t count_per_rank) {
  return enqueue(collective_stream_, [&](cudaStream_t s) {
    return ncclAllGather(in, out, count_per_rank, ncclFloat32, comm_, s);
  });
}

Request NcclCommunicator::send_async(const float* data, std::size_t count, int destination,
                                     int /*tag: NCCL matches in issue order*/) {
  return enqueue(p2p_stream_, [&](cudaStream_t s) {
    return ncclSend(data, count, ncclFloat32, destination, comm_, s);
  });
}

Request NcclCommunicator::recv_async(float* data, std::size_t count, int source,
                                     int /*tag: NCCL matches in issue order*/) {
  return enqueue(p2p_stream_, [&](cudaStream_t s) {
    return ncclRecv(data, count, ncclFloat32, source, comm_, s);
  });
}

double NcclCommunicator::all_reduce_sum_double(double value) {
  return host_.all_reduce_sum_double(value);
}

void NcclCommunicator::all_reduce_sum_doubles(double* data, std::size_t count) {
  host_.all_reduce_sum_doubles(data, count);
}

double NcclCommunicator::all_reduce_max_double(double value) {
  return host_.all_reduce_max_double(value);
}

}  // namespace tessera
