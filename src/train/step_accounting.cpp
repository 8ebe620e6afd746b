#include "train/step_accounting.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace tessera {

StepTokens::StepTokens(int microbatches, int batch, int seq)
    : per_microbatch_(static_cast<std::size_t>(batch) * seq),
      inputs_(per_microbatch_ * microbatches),
      targets_(inputs_.size()) {}

void StepTokens::read(const DataLoader& data, Split split, int64_t first_sample, int count,
                      int batch) {
  for (int m = 0; m < count; ++m) {
    data.read(split, first_sample + static_cast<int64_t>(m) * batch, batch,
              inputs_.data() + per_microbatch_ * m, targets_.data() + per_microbatch_ * m);
  }
}

MicrobatchTokens StepTokens::microbatch(int m) const {
  return {inputs_.data() + per_microbatch_ * m, targets_.data() + per_microbatch_ * m};
}

double global_loss_sum(const std::vector<double>& local, ParallelContext& parallel, bool holder) {
  const std::size_t microbatches = local.size();
  const auto dp = static_cast<std::size_t>(parallel.shape().dp);
  const auto first = microbatches * static_cast<std::size_t>(parallel.coordinates().dp);
  double sum = 0.0;
  for (double loss : gather_item_values(local, first, microbatches * dp, parallel, holder)) {
    sum += loss;
  }
  return sum;
}

ReplicaShare replica_share(int64_t count, int replicas, int replica) {
  const int64_t base = count / replicas, extra = count % replicas;
  const auto start = [&](int64_t r) { return r * base + std::min(r, extra); };
  return {start(replica), start(replica + 1)};
}

std::vector<double> gather_item_values(const std::vector<double>& local, std::size_t first,
                                       std::size_t total, ParallelContext& parallel, bool holder) {
  std::vector<double> all(total, 0.0);
  if (holder) {
    TESSERA_CHECK(first + local.size() <= total, "items within the list");
    std::copy(local.begin(), local.end(), all.begin() + static_cast<std::ptrdiff_t>(first));
  }
  parallel.world().all_reduce_sum_doubles(all.data(), all.size());
  return all;
}

double StageTimes::bubble() const {
  double worst = 0.0;
  for (std::size_t s = 0; s < busy_s.size(); ++s) worst = std::max(worst, wait_s[s] / busy_s[s]);
  return worst;
}

StageTimes gather_stage_times(const PipelineTimings& local, ParallelContext& parallel) {
  const auto stages = static_cast<std::size_t>(parallel.shape().pp);
  std::vector<double> both(2 * stages, 0.0);
  if (parallel.coordinates().tp == 0 && parallel.coordinates().dp == 0) {
    const auto stage = static_cast<std::size_t>(parallel.coordinates().pp);
    both[stage] = local.compute_s + local.tp_comm_s;
    both[stages + stage] = local.wait_s;
  }
  parallel.world().all_reduce_sum_doubles(both.data(), both.size());
  const auto middle = both.begin() + static_cast<std::ptrdiff_t>(stages);
  return {std::vector<double>(both.begin(), middle), std::vector<double>(middle, both.end())};
}

}  // namespace tessera
