#include "train/step_accounting.hpp"

#include <algorithm>

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
  const auto microbatches = local.size();
  std::vector<double> all(microbatches * static_cast<std::size_t>(parallel.shape().dp), 0.0);
  if (holder) {
    const auto first = microbatches * static_cast<std::size_t>(parallel.coordinates().dp);
    std::copy(local.begin(), local.end(), all.begin() + static_cast<std::ptrdiff_t>(first));
  }
  parallel.world().all_reduce_sum_doubles(all.data(), all.size());
  double sum = 0.0;
  for (double loss : all) sum += loss;
  return sum;
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
