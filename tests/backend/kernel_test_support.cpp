#include "kernel_test_support.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

namespace tessera::test {

DeviceBuffer::DeviceBuffer(Backend& backend, std::size_t count)
    : backend_(backend), count_(count), data_(backend.allocate(count)) {}

DeviceBuffer::DeviceBuffer(Backend& backend, const std::vector<float>& host)
    : DeviceBuffer(backend, host.size()) {
  upload(host);
}

DeviceBuffer::~DeviceBuffer() { backend_.release(data_); }

std::vector<float> DeviceBuffer::to_host() const {
  std::vector<float> host(count_);
  backend_.copy_to_host(host.data(), data_, count_);
  return host;
}

void DeviceBuffer::upload(const std::vector<float>& host) {
  ASSERT_EQ(host.size(), count_);
  backend_.copy_from_host(data_, host.data(), count_);
}

TokenBuffer::TokenBuffer(Backend& backend, const std::vector<int32_t>& host)
    : backend_(backend), data_(backend.allocate_tokens(host.size())) {
  backend_.copy_tokens_from_host(data_, host.data(), host.size());
}

TokenBuffer::~TokenBuffer() { backend_.release_tokens(data_); }

std::vector<float> constant_floats(std::size_t count, float value) {
  return std::vector<float>(count, value);
}

Vector to_double(const std::vector<float>& values) { return Vector(values.begin(), values.end()); }

std::vector<float> to_float(const Vector& values) {
  std::vector<float> result(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) result[i] = static_cast<float>(values[i]);
  return result;
}

Vector scaled(const Vector& values, double factor) {
  Vector result = values;
  for (double& value : result) value *= factor;
  return result;
}

void expect_close(const std::vector<float>& got, const Vector& expected, Tolerance tolerance,
                  const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  std::size_t mismatches = 0;
  std::ostringstream first;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double allowed = tolerance.abs + tolerance.rel_k * kFloatEps * std::abs(expected[i]);
    const double error = std::abs(static_cast<double>(got[i]) - expected[i]);
    if (error <= allowed) continue;  // NaN fails here too
    if (mismatches++ < 5) {
      first << "\n  [" << i << "] got " << got[i] << ", expected " << expected[i] << ", error "
            << error << " > " << allowed;
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " of " << got.size()
                            << " elements outside tolerance (abs " << tolerance.abs << ", rel "
                            << tolerance.rel_k << " eps)" << first.str();
}

void expect_bitwise_equal(const std::vector<float>& first, const std::vector<float>& second,
                          const std::string& what) {
  ASSERT_EQ(first.size(), second.size()) << what;
  for (std::size_t i = 0; i < first.size(); ++i) {
    if (std::memcmp(&first[i], &second[i], sizeof(float)) == 0) continue;
    ADD_FAILURE() << what << ": two runs on the same inputs differ, first at element " << i
                  << " of " << first.size() << " (" << first[i] << " vs " << second[i] << ")";
    return;
  }
}

Vector finite_difference_gradient(const std::function<Vector(const Vector&)>& forward,
                                  const Vector& x, const Vector& weights, double h) {
  auto objective = [&](const Vector& point) {
    const Vector out = forward(point);
    double sum = 0.0;
    for (std::size_t i = 0; i < out.size(); ++i) sum += weights[i] * out[i];
    return sum;
  };
  Vector gradient(x.size());
  Vector point = x;
  for (std::size_t i = 0; i < x.size(); ++i) {
    point[i] = x[i] + h;
    const double plus = objective(point);
    point[i] = x[i] - h;
    const double minus = objective(point);
    point[i] = x[i];
    gradient[i] = (plus - minus) / (2.0 * h);
  }
  return gradient;
}

}  // namespace tessera::test
