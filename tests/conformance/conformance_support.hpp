// Shared machinery of the kernel seam's conformance suite: every op runs on the CPU backend (the
// reference) and on a device backend (CUDA, Kokkos) with the same inputs, and the device's results
// must match within a tolerance abs + rel_k * eps(fp32) * |cpu| stated per op. The suite's tests
// are compiled into one executable per device backend, which supplies `device_backend()`.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "tests/support/random_values.hpp"

namespace tessera::test {

inline constexpr double kFloatEps = std::numeric_limits<float>::epsilon();

/// Accept device[i] when |device[i] - cpu[i]| <= abs + rel_k * eps(fp32) * |cpu[i]|.
struct Tolerance {
  double abs = 0.0;
  double rel_k = 0.0;
};

/// Exact agreement: for ops whose every output is one correctly rounded operation, or the same
/// sequence of them, on both backends.
inline constexpr Tolerance kExact{0.0, 0.0};

/// Two implementations summing n terms of magnitude about m in different orders (and blockings)
/// each differ from the exact sum by about n * eps * m in practice: sqrt(n) roundings of partial
/// sums of size sqrt(n) * m add up like a random walk. 4 n eps m covers both with 2x headroom, is
/// far below the worst-case bound n^2 eps m, and is still orders of magnitude below the error a
/// wrong index, stride, mask or scale produces. Used for every GEMM (n = reduction length).
Tolerance reduction_tolerance(double n, double m);

/// Unit roundoff of bf16 (8 significant bits, round to nearest): |bf16(x) - x| <= u |x|, u = 2^-8.
inline constexpr double kBf16UnitRoundoff = 1.0 / 256.0;

/// The CPU backend of this process (fp32), created on first use.
Backend& cpu_backend();

/// Defined by each conformance executable (tests/backend_cuda, tests/backend_kokkos): the backend
/// under test, computing in fp32, created on first use and never destroyed; and why this machine
/// cannot run it ("" when it can; the fixture below skips the device's tests otherwise).
Backend& device_backend();
std::string device_unavailable_reason();

/// Runs `op` on the CPU backend, then on `device` (by default device_backend()).
void for_each_backend(const std::function<void(Backend&)>& op);
void for_each_backend(Backend& device, const std::function<void(Backend&)>& op);

/// The same float data on the CPU backend and on one device backend (`device`, by default
/// device_backend(); a CUDA backend orders its work on its own stream, so a buffer stays with one).
class PairedBuffer {
 public:
  explicit PairedBuffer(std::size_t count, Backend& device = device_backend());
  explicit PairedBuffer(const std::vector<float>& host, Backend& device = device_backend());
  ~PairedBuffer();
  PairedBuffer(const PairedBuffer&) = delete;
  PairedBuffer& operator=(const PairedBuffer&) = delete;

  /// This buffer's copy on `backend` (the CPU backend or this buffer's device).
  float* on(const Backend& backend);
  std::size_t size() const { return count_; }
  std::vector<float> cpu_values() const;
  std::vector<float> device_values() const;

 private:
  std::size_t count_;
  Backend* device_;
  float* cpu_;
  float* device_buffer_;
};

/// The state one backend's attention_forward saves for its attention_backward: sized by that
/// backend (attention_state_count), contents private to it, so never compared across backends.
class AttentionState {
 public:
  AttentionState(Backend& backend, const AttentionShape& shape);
  ~AttentionState();
  AttentionState(const AttentionState&) = delete;
  AttentionState& operator=(const AttentionState&) = delete;
  float* get() { return data_; }

 private:
  Backend* backend_;
  float* data_;
};

/// The same int32 tokens on both backends.
class PairedTokens {
 public:
  explicit PairedTokens(const std::vector<int32_t>& host);
  ~PairedTokens();
  PairedTokens(const PairedTokens&) = delete;
  PairedTokens& operator=(const PairedTokens&) = delete;
  const int32_t* on(const Backend& backend) const;

 private:
  int32_t* cpu_;
  int32_t* device_;
};

/// Fixture of every test of the device backend: skips, visibly, where this machine cannot run it
/// (no GPU), and fails instead when TESSERA_REQUIRE_GPU is set (on the GPU machine).
class DeviceConformance : public ::testing::Test {
 protected:
  void SetUp() override;
};

/// Checks every element of the device's copy against the CPU copy; reports the mismatch count, the
/// first few mismatches and (always, for tuning) the worst error as a fraction of its tolerance.
void expect_match(const std::vector<float>& device, const std::vector<float>& cpu,
                  Tolerance tolerance, const std::string& what);
void expect_match(const PairedBuffer& buffer, Tolerance tolerance, const std::string& what);
/// Rounds each value to the nearest bf16 (ties to even), as the CUDA backend's operand cast does.
std::vector<float> round_to_bf16(std::vector<float> values);

/// ||device - cpu|| / ||cpu|| (Euclidean norms over all elements; 0 when both are zero).
double relative_error(const std::vector<float>& device, const std::vector<float>& cpu);

/// Accepts the device's result when ||device - cpu|| <= bound * ||cpu|| + floor; prints the
/// measured relative error and its ratio to the bound (for tuning).
void expect_relative_error_within(const std::vector<float>& device, const std::vector<float>& cpu,
                                  double bound, double floor, const std::string& what);

void expect_bitwise_equal(const std::vector<float>& first, const std::vector<float>& second,
                          const std::string& what);

/// Runs `op` twice on `device`, each time on fresh copies of `initial` (the buffers it writes or
/// accumulates into), and expects every buffer to come out bitwise identical.
void expect_reproducible(const std::vector<std::vector<float>>& initial,
                         const std::function<void(std::vector<float*>&)>& op,
                         const std::string& what, Backend& device = device_backend());

}  // namespace tessera::test
