#include "parallel/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "core/error.hpp"

namespace tessera {

namespace {

int as_mpi_count(std::size_t count) {
  // MPI 3 counts are int; Open MPI 4.1 has no large-count (MPI_*_c) functions.
  TESSERA_CHECK(count <= static_cast<std::size_t>(INT_MAX),
                "count " + std::to_string(count) + " exceeds MPI's int count; split the buffer");
  return static_cast<int>(count);
}

class MpiPending final : public Request::Pending {
 public:
  MpiPending() = default;
  MPI_Request* handle() { return &request_; }
  void wait() override { TESSERA_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE)); }

 private:
  MPI_Request request_ = MPI_REQUEST_NULL;
};

/// Starts an operation through `start(MPI_Request*)` and wraps its request.
template <typename Start>
Request start_request(Start start) {
  auto pending = std::make_unique<MpiPending>();
  start(pending->handle());
  return Request(std::move(pending));
}

}  // namespace

void check_mpi(int code, const char* statement, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  int world_rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  throw_check_failure(statement, file, line,
                      std::string(text, static_cast<std::size_t>(length)) + " (world rank " +
                          std::to_string(world_rank) + ")");
}

UniqueMpiComm::UniqueMpiComm(UniqueMpiComm&& other) noexcept : comm_(other.comm_) {
  other.comm_ = MPI_COMM_NULL;
}

UniqueMpiComm& UniqueMpiComm::operator=(UniqueMpiComm&& other) noexcept {
  if (this != &other) {
    free();
    comm_ = other.comm_;
    other.comm_ = MPI_COMM_NULL;
  }
  return *this;
}

UniqueMpiComm::~UniqueMpiComm() { free(); }

void UniqueMpiComm::free() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF) {
    MPI_Comm_free(&comm_);
  }
  comm_ = MPI_COMM_NULL;
}

UniqueMpiComm duplicate(MPI_Comm comm) {
  MPI_Comm copy = MPI_COMM_NULL;
  TESSERA_MPI_CHECK(MPI_Comm_dup(comm, &copy));
  return UniqueMpiComm(copy);
}

UniqueMpiComm split(MPI_Comm comm, int colour, int key) {
  MPI_Comm part = MPI_COMM_NULL;
  TESSERA_MPI_CHECK(MPI_Comm_split(comm, colour, key, &part));
  return UniqueMpiComm(part);
}

MpiCommunicator::MpiCommunicator(UniqueMpiComm comm) : comm_(std::move(comm)) {
  TESSERA_CHECK(comm_.get() != MPI_COMM_NULL, "MpiCommunicator needs a communicator");
  TESSERA_MPI_CHECK(MPI_Comm_rank(comm_.get(), &rank_));
  TESSERA_MPI_CHECK(MPI_Comm_size(comm_.get(), &size_));
}

void MpiCommunicator::all_reduce_sum(float* data, std::size_t count) {
  TESSERA_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, data, as_mpi_count(count), MPI_FLOAT, MPI_SUM, comm_.get()));
}

void MpiCommunicator::all_reduce_max(float* data, std::size_t count) {
  TESSERA_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, data, as_mpi_count(count), MPI_FLOAT, MPI_MAX, comm_.get()));
}

void MpiCommunicator::all_reduce_sum_doubles(double* data, std::size_t count) {
  TESSERA_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, data, as_mpi_count(count), MPI_DOUBLE, MPI_SUM, comm_.get()));
}

void MpiCommunicator::reduce_scatter_sum(const float* in, float* out, std::size_t count_per_rank) {
  // Open MPI's reduce-scatter allocates a temporary the size of its whole input on every call.
  // From 32 MiB up glibc maps that fresh each time, and touching its pages for the first time
  // cost ten times the reduction: ZeRO-1's reduce-scatter of bench-cpu's 28 MB of gradients on
  // 2 ranks took 237 ms a step, 19 ms with the temporary from the heap (MALLOC_MMAP_THRESHOLD_
  // raised). In pieces of at most kPieceBytes in all it comes from the heap, reused; gathering
  // a piece's rank blocks into one buffer costs a copy of the input.
  constexpr std::size_t kPieceBytes = std::size_t{8} << 20;
  const auto ranks = static_cast<std::size_t>(size_);
  const std::size_t piece = std::max<std::size_t>(1, kPieceBytes / sizeof(float) / ranks);
  if (count_per_rank <= piece) {
    TESSERA_MPI_CHECK(MPI_Reduce_scatter_block(in, out, as_mpi_count(count_per_rank), MPI_FLOAT,
                                               MPI_SUM, comm_.get()));
    return;
  }
  staging_.resize(piece * ranks);
  for (std::size_t offset = 0; offset < count_per_rank; offset += piece) {
    const std::size_t count = std::min(piece, count_per_rank - offset);
    for (std::size_t r = 0; r < ranks; ++r) {
      std::copy_n(in + r * count_per_rank + offset, count, staging_.data() + r * count);
    }
    TESSERA_MPI_CHECK(MPI_Reduce_scatter_block(staging_.data(), out + offset, as_mpi_count(count),
                                               MPI_FLOAT, MPI_SUM, comm_.get()));
  }
}

void MpiCommunicator::all_gather(const float* in, float* out, std::size_t count_per_rank) {
  const int count = as_mpi_count(count_per_rank);
  // A rank whose block already sits at its place in `out` gathers in place (ZeRO-1's
  // parameter all-gather), which MPI allows only through MPI_IN_PLACE.
  const bool in_place = in == out + static_cast<std::size_t>(rank()) * count_per_rank;
  TESSERA_MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : in, count, MPI_FLOAT, out, count,
                                  MPI_FLOAT, comm_.get()));
}

void MpiCommunicator::broadcast(float* data, std::size_t count, int root) {
  TESSERA_MPI_CHECK(MPI_Bcast(data, as_mpi_count(count), MPI_FLOAT, root, comm_.get()));
}

void MpiCommunicator::send(const float* data, std::size_t count, int destination, int tag) {
  TESSERA_MPI_CHECK(MPI_Send(data, as_mpi_count(count), MPI_FLOAT, destination, tag, comm_.get()));
}

void MpiCommunicator::recv(float* data, std::size_t count, int source, int tag) {
  TESSERA_MPI_CHECK(
      MPI_Recv(data, as_mpi_count(count), MPI_FLOAT, source, tag, comm_.get(), MPI_STATUS_IGNORE));
}

void MpiCommunicator::barrier() { TESSERA_MPI_CHECK(MPI_Barrier(comm_.get())); }

void MpiCommunicator::exchange(const float* out, float* in, std::size_t count, int peer) {
  constexpr int kExchangeTag = 0x7e55;  // its own tag: never matches a plain send or receive
  const int n = as_mpi_count(count);
  TESSERA_MPI_CHECK(MPI_Sendrecv(out, n, MPI_FLOAT, peer, kExchangeTag, in, n, MPI_FLOAT, peer,
                                 kExchangeTag, comm_.get(), MPI_STATUS_IGNORE));
}

Request MpiCommunicator::all_reduce_sum_async(float* data, std::size_t count) {
  return start_request([&](MPI_Request* request) {
    TESSERA_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, as_mpi_count(count), MPI_FLOAT, MPI_SUM,
                                     comm_.get(), request));
  });
}

Request MpiCommunicator::reduce_scatter_sum_async(const float* in, float* out,
                                                  std::size_t count_per_rank) {
  return start_request([&](MPI_Request* request) {
    TESSERA_MPI_CHECK(MPI_Ireduce_scatter_block(in, out, as_mpi_count(count_per_rank), MPI_FLOAT,
                                                MPI_SUM, comm_.get(), request));
  });
}

Request MpiCommunicator::all_gather_async(const float* in, float* out, std::size_t count_per_rank) {
  const int count = as_mpi_count(count_per_rank);
  return start_request([&](MPI_Request* request) {
    TESSERA_MPI_CHECK(
        MPI_Iallgather(in, count, MPI_FLOAT, out, count, MPI_FLOAT, comm_.get(), request));
  });
}

Request MpiCommunicator::send_async(const float* data, std::size_t count, int destination,
                                    int tag) {
  return start_request([&](MPI_Request* request) {
    TESSERA_MPI_CHECK(
        MPI_Isend(data, as_mpi_count(count), MPI_FLOAT, destination, tag, comm_.get(), request));
  });
}

Request MpiCommunicator::recv_async(float* data, std::size_t count, int source, int tag) {
  return start_request([&](MPI_Request* request) {
    TESSERA_MPI_CHECK(
        MPI_Irecv(data, as_mpi_count(count), MPI_FLOAT, source, tag, comm_.get(), request));
  });
}

double MpiCommunicator::all_reduce_sum_double(double value) {
  TESSERA_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, comm_.get()));
  return value;
}

double MpiCommunicator::all_reduce_max_double(double value) {
  TESSERA_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_MAX, comm_.get()));
  return value;
}

}  // namespace tessera
