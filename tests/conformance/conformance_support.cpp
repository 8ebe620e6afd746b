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

namespace tessera::test {
namespace {

double norm(const std::vector<float>& x) {
  double sum = 0.0;
  for (const float value : x) sum += static_cast<double>(value) * value;
  return std::sqrt(sum);
}

/// ||device - cpu||, in double.
double difference_norm(const std::vector<float>& device, const std::vector<float>& cpu) {
  double sum = 0.0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double difference = static_cast<double>(device[i]) - cpu[i];
    sum += difference * difference;
  }
  return std::sqrt(sum);
}

}  // namespace

Tolerance reduction_tolerance(double n, double m) { return {4.0 * n * kFloatEps * m, 4.0 * n}; }

Backend& cpu_backend() {
  // Never destroyed, like the device backends (whose runtimes may be torn down before static
  // destructors run): the process exit frees everything.
  static Backend* backend = make_cpu_backend().release();
  return *backend;
}

void for_each_backend(const std::function<void(Backend&)>& op) {
  for_each_backend(device_backend(), op);
}

void for_each_backend(Backend& device, const std::function<void(Backend&)>& op) {
  op(cpu_backend());
  op(device);
}

void DeviceConformance::SetUp() {
  const std::string reason = device_unavailable_reason();
  if (reason.empty()) return;
  // On the GPU machine a missing device must fail the run, not turn every test into a skip.
  if (std::getenv("TESSERA_REQUIRE_GPU") != nullptr) {
    GTEST_FAIL() << reason << ", but TESSERA_REQUIRE_GPU is set";
  }
  GTEST_SKIP() << "skipped: " << reason;
}

PairedBuffer::PairedBuffer(std::size_t count, Backend& device)
    : count_(count),
      device_(&device),
      cpu_(cpu_backend().allocate(count)),
      device_buffer_(device.allocate(count)) {}

PairedBuffer::PairedBuffer(const std::vector<float>& host, Backend& device)
    : PairedBuffer(host.size(), device) {
  cpu_backend().copy_from_host(cpu_, host.data(), count_);
  device_->copy_from_host(device_buffer_, host.data(), count_);
}

PairedBuffer::~PairedBuffer() {
  cpu_backend().release(cpu_);
  device_->release(device_buffer_);
}

float* PairedBuffer::on(const Backend& backend) {
  if (&backend == &cpu_backend()) return cpu_;
  EXPECT_EQ(&backend, device_) << "a PairedBuffer used on a device backend it does not live on";
  return device_buffer_;
}

std::vector<float> PairedBuffer::cpu_values() const {
  std::vector<float> host(count_);
  cpu_backend().copy_to_host(host.data(), cpu_, count_);
  return host;
}

std::vector<float> PairedBuffer::device_values() const {
  std::vector<float> host(count_);
  device_->copy_to_host(host.data(), device_buffer_, count_);
  return host;
}

AttentionState::AttentionState(Backend& backend, const AttentionShape& shape)
    : backend_(&backend),
      data_(backend.allocate(std::max<std::size_t>(1, backend.attention_state_count(shape)))) {}

AttentionState::~AttentionState() { backend_->release(data_); }

PairedTokens::PairedTokens(const std::vector<int32_t>& host)
    : cpu_(cpu_backend().allocate_tokens(host.size())),
      device_(device_backend().allocate_tokens(host.size())) {
  cpu_backend().copy_tokens_from_host(cpu_, host.data(), host.size());
  device_backend().copy_tokens_from_host(device_, host.data(), host.size());
}

PairedTokens::~PairedTokens() {
  cpu_backend().release_tokens(cpu_);
  device_backend().release_tokens(device_);
}

const int32_t* PairedTokens::on(const Backend& backend) const {
  return &backend == &cpu_backend() ? cpu_ : device_;
}

void expect_match(const std::vector<float>& device, const std::vector<float>& cpu,
                  Tolerance tolerance, const std::string& what) {
  ASSERT_EQ(device.size(), cpu.size()) << what;
  std::size_t mismatches = 0;
  double worst_error = 0.0, worst_ratio = 0.0;
  std::ostringstream first;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double error = std::fabs(static_cast<double>(device[i]) - cpu[i]);
    const double allowed = tolerance.abs + tolerance.rel_k * kFloatEps * std::fabs(cpu[i]);
    const bool ok = error <= allowed;  // false for NaN, as it should be
    worst_error = std::max(worst_error, error);
    if (allowed > 0.0) worst_ratio = std::max(worst_ratio, error / allowed);
    if (ok) continue;
    if (++mismatches <= 5) {
      first << "\n  [" << i << "] device " << device[i] << " cpu " << cpu[i] << " error " << error
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
  expect_match(buffer.device_values(), buffer.cpu_values(), tolerance, what);
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

double relative_error(const std::vector<float>& device, const std::vector<float>& cpu) {
  const double error = difference_norm(device, cpu), reference = norm(cpu);
  return reference == 0.0 ? error : error / reference;
}

void expect_relative_error_within(const std::vector<float>& device, const std::vector<float>& cpu,
                                  double bound, double floor, const std::string& what) {
  ASSERT_EQ(device.size(), cpu.size()) << what;
  const double error = difference_norm(device, cpu), reference = norm(cpu);
  EXPECT_LE(error, bound * reference + floor)
      << what << ": ||device - cpu|| = " << error << ", ||cpu|| = " << reference << ", allowed "
      << bound << " * ||cpu|| + " << floor;
  std::cout << "[ match ] " << what << ": relative error " << relative_error(device, cpu)
            << ", error/allowed " << error / (bound * reference + floor) << "\n";
}

void expect_bitwise_equal(const std::vector<float>& first, const std::vector<float>& second,
                          const std::string& what) {
  ASSERT_EQ(first.size(), second.size()) << what;
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0)
      << what << ": two runs differ";
}

void expect_reproducible(const std::vector<std::vector<float>>& initial,
                         const std::function<void(std::vector<float*>&)>& op,
                         const std::string& what, Backend& device) {
  std::vector<std::vector<float>> results[2];
  for (auto& result : results) {
    std::vector<float*> buffers;
    for (const auto& values : initial) {
      buffers.push_back(device.allocate(values.size()));
      device.copy_from_host(buffers.back(), values.data(), values.size());
    }
    op(buffers);
    for (std::size_t i = 0; i < buffers.size(); ++i) {
      result.emplace_back(initial[i].size());
      device.copy_to_host(result.back().data(), buffers[i], initial[i].size());
      device.release(buffers[i]);
    }
  }
  for (std::size_t i = 0; i < initial.size(); ++i) {
    expect_bitwise_equal(results[0][i], results[1][i], what + ", buffer " + std::to_string(i));
  }
}

}  // namespace tessera::test
