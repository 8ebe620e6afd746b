// Data-parallel gradient reduction of one model chunk, overlapped with backward.
//
// The flat gradient buffer is cut into buckets of about parallel.bucket_mb at parameter
// boundaries, from its end (where backward finishes first) towards its start. During the last
// microbatch's backward, Transformer reports how far the gradients are final; each bucket that
// is complete starts a non-blocking all-reduce over the dp group right away, so communication
// runs while the earlier layers are still computing. `finish` starts what is left and waits.
#pragma once

#include <cstddef>
#include <vector>

#include "model/transformer.hpp"
#include "parallel/communicator.hpp"

namespace tessera {

class BucketedGradientReduction {
 public:
  BucketedGradientReduction(ParameterStore& parameters, Communicator& dp, double bucket_mb);

  /// The hook to pass to the last microbatch's Transformer::backward.
  const GradientsReadyHook& hook() const { return hook_; }
  /// Starts the buckets not yet started, then waits for all. Returns the seconds spent waiting,
  /// i.e. the communication that backward did not hide.
  double finish();
  std::size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::size_t begin, end;
  };
  void start_ready(std::size_t ready_from);

  ParameterStore& parameters_;
  Communicator& dp_;
  std::vector<Bucket> buckets_;  // from the end of the buffer towards its start
  std::size_t next_ = 0;         // first bucket not yet started
  std::vector<Request> pending_;
  GradientsReadyHook hook_;
};

/// Sum of squares of the gradients this rank owns within [begin, end): a tensor replicated over
/// the tensor-parallel group counts on tp rank 0 only, and the last pipeline stage's copy of a
/// tied embedding not at all, so that summing over ranks counts every logical gradient once.
double owned_gradient_sum_of_squares(const Transformer& model, Backend& backend,
                                     std::size_t begin = 0,
                                     std::size_t end = static_cast<std::size_t>(-1));

}  // namespace tessera
