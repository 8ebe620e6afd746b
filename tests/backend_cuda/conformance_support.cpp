#include "conformance_support.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>

#include "backend/cpu/bf16_linear.hpp"
#include "backend/cuda/cuda_backend.hpp"

namespace tessera::test {
namespace {

struct Backends {
  std::unique_ptr<Backend> cpu = make_cpu_backend();
  std::unique_ptr<Backend> cuda = make_cuda_backend();
  std::unique_ptr<Backend> cuda_bf16 = make_cuda_backend(GemmPrecision::bf16);
  std::unique_ptr<Backend> cuda_bf16_native =
      make_cuda_backend(GemmPrecision::bf16, CudaAttention::native);
};

double norm(const std::vector<float>& x) {
  double sum = 0.0;
  for (const float value : x) sum += static_cast<double>(value) * value;
  return std::sqrt(sum);
}

/// ||cuda - cpu||, in double.
double difference_norm(const std::vector<float>& cuda, const std::vector<float>& cpu) {
  double sum = 0.0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double difference = static_cast<double>(cuda[i]) - cpu[i];
    sum += difference * difference;
  }
  return std::sqrt(sum);
}

Backends& backends() {
  // Never destroyed: at exit the CUDA runtime may already be torn down when static destructors
  // run, and releasing a cuBLAS handle then is not safe. The process exit frees everything.
  static Backends* instance = new Backends;
  return *instance;
}

}  // namespace

Tolerance reduction_tolerance(double n, double m) { return {4.0 * n * kFloatEps * m, 4.0 * n}; }

Backend& cpu_backend() { return *backends().cpu; }
Backend& cuda_backend() { return *backends().cuda; }
Backend& cuda_bf16_backend() { return *backends().cuda_bf16; }
Backend& cuda_bf16_native_backend() { return *backends().cuda_bf16_native; }

void for_each_backend(const std::function<void(Backend&)>& op) {
  for_each_backend(cuda_backend(), op);
}

void for_each_backend(Backend& device, const std::function<void(Backend&)>& op) {
  op(cpu_backend());
  op(device);
}

void CudaConformance::SetUp() {
  if (cuda_device_available()) return;
  // On the GPU machine a missing device must fail the run, not turn every test into a skip.
  if (std::getenv("TESSERA_REQUIRE_GPU") != nullptr) {
    GTEST_FAIL() << "no usable GPU, but TESSERA_REQUIRE_GPU is set";
  }
  GTEST_SKIP() << "skipped: no GPU";
}

PairedBuffer::PairedBuffer(std::size_t count, Backend& device)
    : count_(count),
      device_(&device),
      cpu_(cpu_backend().allocate(count)),
      cuda_(device.allocate(count)) {}

PairedBuffer::PairedBuffer(const std::vector<float>& host, Backend& device)
    : PairedBuffer(host.size(), device) {
  cpu_backend().copy_from_host(cpu_, host.data(), count_);
  device_->copy_from_host(cuda_, host.data(), count_);
}

PairedBuffer::~PairedBuffer() {
  cpu_backend().release(cpu_);
  device_->release(cuda_);
}

float* PairedBuffer::on(const Backend& backend) {
  if (&backend == &cpu_backend()) return cpu_;
  EXPECT_EQ(&backend, device_) << "a PairedBuffer used on a CUDA backend it does not live on";
  return cuda_;
}

std::vector<float> PairedBuffer::cpu_values() const {
  std::vector<float> host(count_);
  cpu_backend().copy_to_host(host.data(), cpu_, count_);
  return host;
}

std::vector<float> PairedBuffer::cuda_values() const {
  std::vector<float> host(count_);
  device_->copy_to_host(host.data(), cuda_, count_);
  return host;
}

AttentionState::AttentionState(Backend& backend, const AttentionShape& shape)
    : backend_(&backend),
      data_(backend.allocate(std::max<std::size_t>(1, backend.attention_state_count(shape)))) {}

AttentionState::~AttentionState() { backend_->release(data_); }

PairedTokens::PairedTokens(const std::vector<int32_t>& host)
    : cpu_(cpu_backend().allocate_tokens(host.size())),
      cuda_(cuda_backend().allocate_tokens(host.size())) {
  cpu_backend().copy_tokens_from_host(cpu_, host.data(), host.size());
  cuda_backend().copy_tokens_from_host(cuda_, host.data(), host.size());
}

PairedTokens::~PairedTokens() {
  cpu_backend().release_tokens(cpu_);
  cuda_backend().release_tokens(cuda_);
}

const int32_t* PairedTokens::on(const Backend& backend) const {
  return &backend == &cpu_backend() ? cpu_ : cuda_;
}

std::vector<float> random_floats(std::size_t count, uint32_t seed, float low, float high) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(generator);
  return values;
}

std::vector<int32_t> random_tokens(std::size_t count, uint32_t seed, int32_t low, int32_t high) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int32_t> distribution(low, high - 1);
  std::vector<int32_t> values(count);
  for (int32_t& value : values) value = distribution(generator);
  return values;
}

void expect_match(const std::vector<float>& cuda, const std::vector<float>& cpu,
                  Tolerance tolerance, const std::string& what) {
  ASSERT_EQ(cuda.size(), cpu.size()) << what;
  std::size_t mismatches = 0;
  double worst_error = 0.0, worst_ratio = 0.0;
  std::ostringstream first;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double error = std::fabs(static_cast<double>(cuda[i]) - cpu[i]);
    const double allowed = tolerance.abs + tolerance.rel_k * kFloatEps * std::fabs(cpu[i]);
    const bool ok = error <= allowed;  // false for NaN, as it should be
    worst_error = std::max(worst_error, error);
    if (allowed > 0.0) worst_ratio = std::max(worst_ratio, error / allowed);
    if (ok) continue;
    if (++mismatches <= 5) {
      first << "\n  [" << i << "] cuda " << cuda[i] << " cpu " << cpu[i] << " error " << error
            << " allowed " << allowed;
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " of " << cpu.size()
                            << " elements outside abs " << tolerance.abs << " + rel_k "
                            << tolerance.rel_k << " * eps * |cpu|" << first.str();
  std::cout << "[ match ] " << what << ": max error " << worst_error << ", worst error/allowed "
            << worst_ratio << "\n";
}

void expect_match(const PairedBuffer& buffer, Tolerance tolerance, const std::string& what) {
  expect_match(buffer.cuda_values(), buffer.cpu_values(), tolerance, what);
}

std::vector<float> round_to_bf16(std::vector<float> values) {
  // The CPU backend's rounding, which tests/backend/test_linear_bf16.cpp checks against an
  // independent one; the CUDA cast rounds the same way (to nearest, ties to even).
  std::vector<uint16_t> bits(values.size());
  cpu::round_to_bf16(bits.data(), values.data(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = std::bit_cast<float>(static_cast<uint32_t>(bits[i]) << 16);
  }
  return values;
}

double relative_error(const std::vector<float>& cuda, const std::vector<float>& cpu) {
  const double error = difference_norm(cuda, cpu), reference = norm(cpu);
  return reference == 0.0 ? error : error / reference;
}

void expect_relative_error_within(const std::vector<float>& cuda, const std::vector<float>& cpu,
                                  double bound, double floor, const std::string& what) {
  ASSERT_EQ(cuda.size(), cpu.size()) << what;
  const double error = difference_norm(cuda, cpu), reference = norm(cpu);
  EXPECT_LE(error, bound * reference + floor)
      << what << ": ||cuda - cpu|| = " << error << ", ||cpu|| = " << reference << ", allowed "
      << bound << " * ||cpu|| + " << floor;
  std::cout << "[ match ] " << what << ": relative error " << relative_error(cuda, cpu)
            << ", error/allowed " << error / (bound * reference + floor) << "\n";
}

void expect_bitwise_equal(const std::vector<float>& first, const std::vector<float>& second,
                          const std::string& what) {
  ASSERT_EQ(first.size(), second.size()) << what;
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0)
      << what << ": two runs differ";
}

}  // namespace tessera::test
