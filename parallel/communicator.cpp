#include "parallel/communicator.hpp"

#include <algorithm>
#include <exception>
#include <vector>

namespace tessera {

Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    if (pending_ != nullptr && std::uncaught_exceptions() == 0) pending_->wait();
    pending_ = std::move(other.pending_);
  }
  return *this;
}

Request::~Request() {
  // Waiting during unwinding could block forever on a peer that is itself unwinding; the job is
  // about to be aborted, so the in-flight operation is left behind.
  if (pending_ == nullptr) return;
  if (std::uncaught_exceptions() > 0) {
    static_cast<void>(pending_.release());
    return;
  }
  pending_->wait();
}

void Request::wait() {
  if (pending_ == nullptr) return;
  pending_->wait();
  pending_.reset();
}

void deterministic_all_reduce_sum(Communicator& comm, float* data, std::size_t count) {
  // Bounds the scratch buffer: size() x kPiece floats.
  constexpr std::size_t kPiece = std::size_t{1} << 18;
  const auto ranks = static_cast<std::size_t>(comm.size());
  std::vector<float> gathered(ranks * std::min(count, kPiece));
  for (std::size_t begin = 0; begin < count; begin += kPiece) {
    const std::size_t piece = std::min(kPiece, count - begin);
    comm.all_gather(data + begin, gathered.data(), piece);
    for (std::size_t i = 0; i < piece; ++i) {
      float sum = gathered[i];
      for (std::size_t r = 1; r < ranks; ++r) sum += gathered[r * piece + i];
      data[begin + i] = sum;
    }
  }
}

}  // namespace tessera
