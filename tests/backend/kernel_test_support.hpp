// Shared machinery of the kernel conformance tests: a fixture parameterised by backend factory
// (every backend runs the same tests), RAII device buffers, seeded random data, the tolerance
// check against the double reference, and central finite differences.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "reference_ops.hpp"
#include "tests/support/random_values.hpp"

namespace tessera::test {

using reference::Vector;
using BackendFactory = std::unique_ptr<Backend> (*)();

/// Fixture of every kernel test; GetParam() makes the backend under test.
class BackendTest : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override { backend_ = GetParam()(); }
  Backend& backend() { return *backend_; }

 private:
  std::unique_ptr<Backend> backend_;
};

/// The fp32 CPU backend, as a BackendFactory.
inline std::unique_ptr<Backend> make_fp32_cpu_backend() { return make_cpu_backend(); }

/// Runs a BackendTest-derived suite on every backend built into this binary.
#define TESSERA_INSTANTIATE_BACKENDS(suite) \
  INSTANTIATE_TEST_SUITE_P(Cpu, suite, ::testing::Values(&::tessera::test::make_fp32_cpu_backend))

/// A float buffer owned by a backend, filled from (and read back to) host vectors.
class DeviceBuffer {
 public:
  DeviceBuffer(Backend& backend, std::size_t count);
  DeviceBuffer(Backend& backend, const std::vector<float>& host);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  float* get() { return data_; }
  std::size_t size() const { return count_; }
  std::vector<float> to_host() const;
  void upload(const std::vector<float>& host);

 private:
  Backend& backend_;
  std::size_t count_;
  float* data_;
};

/// An int32 token buffer owned by a backend.
class TokenBuffer {
 public:
  TokenBuffer(Backend& backend, const std::vector<int32_t>& host);
  ~TokenBuffer();
  TokenBuffer(const TokenBuffer&) = delete;
  TokenBuffer& operator=(const TokenBuffer&) = delete;
  const int32_t* get() const { return data_; }

 private:
  Backend& backend_;
  int32_t* data_;
};

std::vector<float> constant_floats(std::size_t count, float value);
Vector to_double(const std::vector<float>& values);
std::vector<float> to_float(const Vector& values);

inline constexpr double kFloatEps = std::numeric_limits<float>::epsilon();
inline const float kGarbage = std::numeric_limits<float>::quiet_NaN();

/// Accept got[i] when |got[i] - expected[i]| <= abs + rel_k * eps(float) * |expected[i]|.
struct Tolerance {
  double abs = 0.0;
  double rel_k = 0.0;
};

/// Twice the tolerance: for a gradient accumulated twice into the same buffer.
inline Tolerance twice(Tolerance tolerance) { return {2.0 * tolerance.abs, 2.0 * tolerance.rel_k}; }
Vector scaled(const Vector& values, double factor);

/// Checks every element; reports the number of mismatches and the first few of them.
void expect_close(const std::vector<float>& got, const Vector& expected, Tolerance tolerance,
                  const std::string& what);
void expect_bitwise_equal(const std::vector<float>& first, const std::vector<float>& second,
                          const std::string& what);

/// Gradient of L(x) = sum_i weights[i] * forward(x)[i] by central differences with step h.
Vector finite_difference_gradient(const std::function<Vector(const Vector&)>& forward,
                                  const Vector& x, const Vector& weights, double h = 1e-5);

}  // namespace tessera::test
