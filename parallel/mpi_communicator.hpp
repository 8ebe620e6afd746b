// The Communicator over an MPI communicator, for host buffers.
#pragma once

#include <mpi.h>

#include <vector>

#include "parallel/communicator.hpp"

namespace tessera {

/// Checks the return code of an MPI call; on failure throws InternalError naming the call,
/// file:line, the MPI error string and the world rank (fail_fast then ends the job). MPI's
/// default handler (errors are fatal) usually ends the job first; this covers communicators
/// whose handler returns errors.
#define TESSERA_MPI_CHECK(call) ::tessera::check_mpi((call), #call, __FILE__, __LINE__)
void check_mpi(int code, const char* statement, const char* file, int line);

/// Owns an MPI_Comm: frees it on destruction (unless MPI is already finalized, or it is
/// MPI_COMM_WORLD / MPI_COMM_SELF / MPI_COMM_NULL, which are never freed). Move-only.
class UniqueMpiComm {
 public:
  UniqueMpiComm() = default;
  explicit UniqueMpiComm(MPI_Comm comm) : comm_(comm) {}
  UniqueMpiComm(UniqueMpiComm&& other) noexcept;
  UniqueMpiComm& operator=(UniqueMpiComm&& other) noexcept;
  UniqueMpiComm(const UniqueMpiComm&) = delete;
  UniqueMpiComm& operator=(const UniqueMpiComm&) = delete;
  ~UniqueMpiComm();

  MPI_Comm get() const { return comm_; }

 private:
  void free();
  MPI_Comm comm_ = MPI_COMM_NULL;
};

/// MPI_Comm_dup of `comm`, owned.
UniqueMpiComm duplicate(MPI_Comm comm);
/// MPI_Comm_split of `comm`: ranks with equal `colour` form one communicator, ordered by `key`.
UniqueMpiComm split(MPI_Comm comm, int colour, int key);

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(UniqueMpiComm comm);
  MpiCommunicator(MpiCommunicator&&) noexcept = default;
  MpiCommunicator& operator=(MpiCommunicator&&) noexcept = default;

  MPI_Comm handle() const { return comm_.get(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

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
  UniqueMpiComm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::vector<float> staging_;  // reduce_scatter_sum's pieces, kept from call to call
};

}  // namespace tessera
