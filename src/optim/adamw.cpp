#include "optim/adamw.hpp"

namespace tessera {

AdamW::AdamW(const TrainConfig& train, ParameterStore& parameters, Backend& backend)
    : train_(train), parameters_(parameters), backend_(backend) {
  m_ = backend_.allocate(parameters_.total_count());
  v_ = backend_.allocate(parameters_.total_count());
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

double AdamW::gradient_sum_of_squares() const {
  return backend_.sum_of_squares(parameters_.gradients(), parameters_.total_count());
}

float AdamW::clip_factor(double global_norm) const {
  if (train_.grad_clip <= 0.0f || global_norm <= train_.grad_clip) return 1.0f;
  return static_cast<float>(train_.grad_clip / (global_norm + 1e-6));
}

void AdamW::step(int step, double lr, float gradient_scale) {
  if (gradient_scale != 1.0f) {
    backend_.scale(parameters_.gradients(), gradient_scale, parameters_.total_count());
  }
  for (std::size_t i = 0; i < parameters_.infos().size(); ++i) {
    const ParameterInfo& info = parameters_.info(i);
    const float decay = decays(info) ? train_.weight_decay : 0.0f;
    backend_.adamw_update(parameters_.value(i), parameters_.gradient(i), m_ + info.offset,
                          v_ + info.offset, info.count, static_cast<float>(lr), train_.beta1,
                          train_.beta2, train_.adam_eps, decay, step);
  }
}

}  // namespace tessera
