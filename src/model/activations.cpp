#include "model/activations.hpp"

namespace tessera {

BufferPool::~BufferPool() {
  if (backend_ == nullptr) return;
  for (float* buffer : buffers_) backend_->release(buffer);
  for (int32_t* buffer : token_buffers_) backend_->release_tokens(buffer);
}

BufferPool::BufferPool(BufferPool&& other) noexcept
    : backend_(other.backend_),
      buffers_(std::move(other.buffers_)),
      token_buffers_(std::move(other.token_buffers_)),
      bytes_(other.bytes_) {
  other.backend_ = nullptr;
}

float* BufferPool::take(std::size_t count) {
  bytes_ += count * sizeof(float);
  buffers_.push_back(backend_->allocate(count));
  return buffers_.back();
}

int32_t* BufferPool::take_tokens(std::size_t count) {
  bytes_ += count * sizeof(int32_t);
  token_buffers_.push_back(backend_->allocate_tokens(count));
  return token_buffers_.back();
}

}  // namespace tessera
