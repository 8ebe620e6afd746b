#include "optim/adamw.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"

namespace tessera {

float clip_factor(float limit, double global_norm) {
  if (limit <= 0.0f || global_norm <= limit) return 1.0f;
  return static_cast<float>(limit / (global_norm + 1e-6));
}

AdamW::AdamW(const TrainConfig& train, ParameterStore& parameters, Backend& backend,
             std::size_t begin, std::size_t end)
    : train_(train),
      parameters_(parameters),
      backend_(backend),
      begin_(begin),
      end_(end == kWhole ? parameters.total_count() : end) {
  TESSERA_CHECK(begin_ <= end_ && end_ <= parameters.padded_count(),
                "optimizer range outside the parameter buffer");
  m_ = backend_.allocate(std::max<std::size_t>(1, end_ - begin_));
  v_ = backend_.allocate(std::max<std::size_t>(1, end_ - begin_));
}

AdamW::~AdamW() {
  backend_.release(m_);
  backend_.release(v_);
}

bool AdamW::decays(const ParameterInfo& info) const {
  const bool embedding = info.name.starts_with("embed/");
  if (embedding) return train_.decay_embeddings;
  const bool matrix = info.global_shape.size() >= 2;
  return matrix || train_.decay_norms_and_biases;
}

void AdamW::step(int step, double lr, float gradient_scale) {
  // Offsets relative to begin_: m_ and v_ hold only this optimizer's range (ZeRO's shard).
  std::vector<AdamWSegment> segments;
  for (std::size_t i = 0; i < parameters_.infos().size(); ++i) {
    const ParameterInfo& info = parameters_.info(i);
    // The part of this parameter inside the range (all of it without ZeRO).
    const std::size_t first = std::max(begin_, info.offset);
    const std::size_t last = std::min(end_, info.offset + info.count);
    if (first >= last) continue;
    segments.push_back({first - begin_, last - first, decays(info) ? train_.weight_decay : 0.0f});
  }
  const AdamWStep settings{static_cast<float>(lr), train_.beta1, train_.beta2,
                           train_.adam_eps,        step,         gradient_scale};
  backend_.adamw_update(parameters_.values() + begin_, parameters_.gradients() + begin_, m_, v_,
                        segments, settings);
}

}  // namespace tessera
