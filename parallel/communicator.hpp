// Collective and point-to-point communication of float buffers within one group of ranks.
//
// Layers, the pipeline executor and the data-parallel gradient reduction talk to a
// `Communicator&` and never to MPI. `MpiCommunicator` (mpi_communicator.hpp) moves host
// buffers. A later `NcclCommunicator` implements the same interface for device buffers: the
// pointers are then device pointers, the operations are enqueued on the communicator's stream
// and a `Request` waits on an event recorded after them. Layers stay unchanged because they
// only pass the buffers they already hold (host or device, whichever the backend uses).
//
// Every operation is collective over the group unless it is send/recv: all ranks of the group
// must call it, in the same order, with the same counts. Counts are elements, not bytes.
#pragma once

#include <cstddef>
#include <memory>

namespace tessera {

/// A started non-blocking operation. The buffers passed to it must stay alive and untouched
/// (except for reading the input of a send) until `wait()` returns. Move-only.
class Request {
 public:
  /// What an implementation provides for one in-flight operation.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };

  Request() = default;  ///< already complete
  explicit Request(std::unique_ptr<Pending> pending) : pending_(std::move(pending)) {}
  Request(Request&&) noexcept = default;
  Request& operator=(Request&& other) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  /// Waits if still pending, except while an exception unwinds: then the operation is
  /// abandoned (its peers may never arrive; fail_fast ends the job).
  ~Request();

  /// Blocks until the operation has completed; afterwards the request is complete.
  void wait();
  bool complete() const { return pending_ == nullptr; }

 private:
  std::unique_ptr<Pending> pending_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;  ///< this rank's index in the group, 0 <= rank < size
  virtual int size() const = 0;

  /// data[i] <- sum over ranks r of data_r[i], on every rank, in place.
  /// The association of the sum is the library's choice (see deterministic_all_reduce_sum).
  virtual void all_reduce_sum(float* data, std::size_t count) = 0;
  /// data[i] <- max over ranks r of data_r[i], on every rank, in place (exact: no rounding).
  virtual void all_reduce_max(float* data, std::size_t count) = 0;
  /// out[i] <- sum over ranks r of in_r[rank * count_per_rank + i]: `in` holds size() blocks
  /// of count_per_rank elements; this rank receives the sum of block `rank()`.
  virtual void reduce_scatter_sum(const float* in, float* out, std::size_t count_per_rank) = 0;
  /// out[r * count_per_rank + i] <- in_r[i]: the concatenation of every rank's block, in rank
  /// order, on every rank. `out` holds size() * count_per_rank elements. `in` may be this
  /// rank's own block of `out` (in == out + rank() * count_per_rank).
  virtual void all_gather(const float* in, float* out, std::size_t count_per_rank) = 0;
  /// data <- data_root on every rank.
  virtual void broadcast(float* data, std::size_t count, int root) = 0;
  /// Point-to-point; messages between two ranks with the same tag arrive in the order sent.
  virtual void send(const float* data, std::size_t count, int destination, int tag = 0) = 0;
  virtual void recv(float* data, std::size_t count, int source, int tag = 0) = 0;
  virtual void barrier() = 0;
  /// Sends `out` to `peer` and receives the peer's `count` floats into `in`, both at once, so
  /// two ranks may exchange without either waiting for the other to receive first (which a
  /// device library that matches sends in issue order needs). `in` and `out` must not overlap.
  virtual void exchange(const float* out, float* in, std::size_t count, int peer) = 0;

  /// Non-blocking forms of the above: start the operation and return; `Request::wait()`
  /// completes it. Used to overlap the data-parallel gradient buckets with the backward pass
  /// and pipeline transfers with compute. Collectives must be started in the same order on
  /// every rank.
  virtual Request all_reduce_sum_async(float* data, std::size_t count) = 0;
  virtual Request reduce_scatter_sum_async(const float* in, float* out,
                                           std::size_t count_per_rank) = 0;
  virtual Request all_gather_async(const float* in, float* out, std::size_t count_per_rank) = 0;
  virtual Request send_async(const float* data, std::size_t count, int destination,
                             int tag = 0) = 0;
  virtual Request recv_async(float* data, std::size_t count, int source, int tag = 0) = 0;

  /// Host scalars (losses, norms, token counts): the sum / maximum over ranks, on every rank.
  virtual double all_reduce_sum_double(double value) = 0;
  /// data[i] <- sum over ranks of data_r[i] for host doubles (per-microbatch losses).
  virtual void all_reduce_sum_doubles(double* data, std::size_t count) = 0;
  virtual double all_reduce_max_double(double value) = 0;
};

/// data[i] <- ((data_0[i] + data_1[i]) + data_2[i]) + ... + data_{size-1}[i] on every rank:
/// the contributions summed in rank order, left to right, in float. The result is bitwise
/// the same on every rank and independent of the MPI library, its algorithm and the network:
/// every rank gathers all contributions (all_gather, in pieces of bounded size) and adds them
/// itself. Costs size() times the traffic and a scratch buffer of size() x a piece; use it for
/// reproducibility checks and small buffers, not for routine gradient reduction.
///
/// What equality with a single-rank run requires. With gradient accumulation, dp = 1 computes
/// g = ((g_0 + g_1) + g_2) + g_3 into the gradient buffer, microbatch after microbatch. With
/// dp = 4 and this reduction, the result is ((p_0 + p_1) + p_2) + p_3 over the ranks' partial
/// sums p_r. The two are bitwise equal exactly when each rank's partial is one microbatch's
/// gradient (p_r = g_r, i.e. rank r holds microbatch r, the dp=1 run's r-th) -- the same
/// association. With k > 1 microbatches per rank, p_0 = g_0 + g_1 and the dp result is
/// (g_0 + g_1) + (g_2 + g_3), which differs from the sequential sum in the last bits; it is then
/// still deterministic and run-to-run reproducible for a fixed dp, but equal to dp = 1 only up
/// to rounding. Gradients must also be computed by the same kernels in the same order on each
/// rank, which holds for the CPU backend (see tests/backend/test_determinism.cpp).
void deterministic_all_reduce_sum(Communicator& comm, float* data, std::size_t count);

}  // namespace tessera
