#include "train/gradient_sync.hpp"

#include <algorithm>
#include <vector>

#include "train/step_timer.hpp"

namespace tessera {

BucketedGradientReduction::BucketedGradientReduction(ParameterStore& parameters, Communicator& dp,
                                                     double bucket_mb)
    : parameters_(parameters), dp_(dp) {
  const auto bucket_elements = static_cast<std::size_t>(bucket_mb * 1024 * 1024 / sizeof(float));
  const auto& infos = parameters_.infos();
  std::size_t end = parameters_.total_count();
  for (std::size_t i = infos.size(); i-- > 0;) {
    const std::size_t begin = infos[i].offset;
    if (end - begin >= bucket_elements || i == 0) {
      buckets_.push_back({begin, end});
      end = begin;
    }
  }
  hook_ = [this](std::size_t ready_from) { start_ready(ready_from); };
}

void BucketedGradientReduction::start_ready(std::size_t ready_from) {
  while (next_ < buckets_.size() && buckets_[next_].begin >= ready_from) {
    const Bucket& bucket = buckets_[next_++];
    pending_.push_back(dp_.all_reduce_sum_async(parameters_.gradients() + bucket.begin,
                                                bucket.end - bucket.begin));
  }
}

double BucketedGradientReduction::finish() {
  StepTimer waiting;
  start_ready(0);
  for (Request& request : pending_) request.wait();
  pending_.clear();
  next_ = 0;
  return waiting.seconds();
}

double owned_gradient_sum_of_squares(const Transformer& model, Backend& backend, std::size_t begin,
                                     std::size_t end) {
  const ParameterStore& parameters = model.parameters();
  const bool tp_leader = model.partition().tp_rank == 0;
  std::vector<BufferRange> owned;
  for (const ParameterInfo& info : parameters.infos()) {
    const bool tied_copy = !model.first_stage() && info.name == "embed/tokens/weight";
    if (tied_copy || (info.replicated() && model.partition().tp_size > 1 && !tp_leader)) continue;
    const std::size_t first = std::max(begin, info.offset);
    const std::size_t last = std::min(end, info.offset + info.count);
    if (first < last) owned.push_back({first, last - first});
  }
  return backend.sum_of_squares_of_ranges(parameters.gradients(), owned);
}

}  // namespace tessera
