#include "inference/validation_loss.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "io/data/data_loader.hpp"
#include "train/step_accounting.hpp"

namespace tessera {
namespace {

/// How many windows to score: every one of a bounded split, up to `max_windows` when given.
int64_t windows_to_score(const DataLoader& data, const std::string& source, int64_t max_windows) {
  const std::optional<int64_t> available = data.samples_per_epoch(Split::validation);
  if (!available && max_windows == 0) {
    throw UsageError("the " + source +
                     " source has no end; say how many validation windows to score with "
                     "--windows N");
  }
  const int64_t windows = available ? *available : max_windows;
  if (windows == 0) {
    throw UsageError("data source " + source + " has no validation window of seq_len + 1 = " +
                     std::to_string(data.seq_len() + 1) +
                     " tokens; re-run tessera prepare with a larger --val-fraction");
  }
  return max_windows > 0 ? std::min(windows, max_windows) : windows;
}

}  // namespace

DataLoader open_validation_source(const Config& config, const std::string& source) {
  DataConfig data = config.data;
  data.source = source;
  data.sources.clear();
  data.weights.clear();
  return DataLoader::open(data, config.model);
}

SourceLoss validation_loss(CheckpointModel& model, const DataLoader& loader,
                           const std::string& source, int64_t max_windows,
                           const WorkProgress& progress) {
  const Config& config = model.config();
  SourceLoss result;
  result.source = source;
  result.windows = windows_to_score(loader, source, max_windows);
  result.tokens = result.windows * config.model.seq_len;

  const int batch = config.train.micro_batch;
  const std::size_t seq = static_cast<std::size_t>(config.model.seq_len);
  const int64_t microbatches = (result.windows + batch - 1) / batch;
  const ReplicaShare share = model.share_of(microbatches);
  std::vector<double> sums(static_cast<std::size_t>(share.size()), 0.0);
  model.forward(
      share,
      [&](int64_t g, int32_t* inputs, int32_t* targets) {
        // A last, partial microbatch is filled up with windows that are not counted.
        loader.read(Split::validation, g * batch, batch, inputs, targets);
      },
      [&](int64_t g, std::span<const float> losses) {
        const auto rows =
            static_cast<std::size_t>(std::min<int64_t>(batch, result.windows - g * batch));
        double sum = 0.0;
        for (const float loss : losses.first(rows * seq)) sum += loss;
        sums[static_cast<std::size_t>(g - share.begin)] = sum;
      },
      progress);
  double sum = 0.0;
  for (const double part : gather_item_values(sums, static_cast<std::size_t>(share.begin),
                                              static_cast<std::size_t>(microbatches),
                                              model.parallel(), model.loss_holder())) {
    sum += part;
  }
  result.loss = sum / static_cast<double>(result.tokens);
  return result;
}

}  // namespace tessera
