// Memory, element-wise ops, sum of squares and AdamW: the device backend against the CPU backend.
#include <algorithm>
#include <cmath>
#include <vector>

#include "conformance_support.hpp"

namespace tessera::test {
namespace {

using ElementwiseConformance = DeviceConformance;

const std::size_t kCounts[] = {1, 7, 33, 1000, (1u << 20) + 3};

TEST_F(ElementwiseConformance, CopiesRoundTripAndAllocationIsZeroed) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    PairedBuffer zeros(count);
    expect_match(zeros.device_values(), std::vector<float>(count, 0.0f), kExact, "allocate");
    PairedBuffer x(random_floats(count, 1));
    expect_match(x, kExact, "copy_from_host / copy_to_host");
    PairedBuffer y(count);
    device_backend().copy_device(y.on(device_backend()), x.on(device_backend()), count);
    expect_match(y.device_values(), x.cpu_values(), kExact, "copy_device");
    device_backend().fill_zero(x.on(device_backend()), count);
    expect_match(x.device_values(), std::vector<float>(count, 0.0f), kExact, "fill_zero");
  }
}

TEST_F(ElementwiseConformance, MemoryUseCountsBuffersAndKeepsTheirPeak) {
  Backend& backend = device_backend();
  const MemoryUse before = backend.memory_use();
  float* big = backend.allocate(std::size_t{64} << 20);  // 256 MiB
  const MemoryUse held = backend.memory_use();
  EXPECT_EQ(held.buffer_bytes - before.buffer_bytes, std::size_t{256} << 20);
  // The device's used memory holds the new buffer (and whatever else runs there).
  EXPECT_GE(held.system_bytes, std::size_t{256} << 20);
  backend.release(big);
  const MemoryUse after = backend.memory_use();
  EXPECT_EQ(after.buffer_bytes, before.buffer_bytes);
  EXPECT_GE(after.peak_buffer_bytes, held.buffer_bytes);
  const DeviceDescription device = backend.describe_device();
  EXPECT_TRUE(device.kind == "gpu" || device.kind == "cpu") << device.kind;
  EXPECT_FALSE(device.name.empty());
  EXPECT_GE(device.memory_bytes, held.system_bytes);
  EXPECT_GT(device.compute_units, 0);
}

// A backend that says its buffers are host memory: the host's writes in place are what the
// backend sees, and the backend's are what the host reads (checkpoints rely on it).
TEST_F(ElementwiseConformance, HostAccessibleBuffersAreReadAndWrittenInPlace) {
  Backend& backend = device_backend();
  EXPECT_EQ(backend.host_accessible(), backend.describe_device().kind == "cpu");
  if (!backend.host_accessible()) return;  // a GPU's buffers go through copy_to/from_host
  const std::vector<float> values = random_floats(1000, 5);
  float* buffer = backend.allocate(values.size());
  std::copy(values.begin(), values.end(), buffer);
  backend.scale(buffer, 2.0f, values.size());
  std::vector<float> copied(values.size());
  backend.copy_to_host(copied.data(), buffer, values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(buffer[i], 2.0f * values[i]) << i;
    ASSERT_EQ(copied[i], buffer[i]) << i;
  }
  backend.release(buffer);
}

// One correctly rounded add or multiply per element on both sides: results agree exactly.
TEST_F(ElementwiseConformance, AddAccumulateScale) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    PairedBuffer a(random_floats(count, 2)), b(random_floats(count, 3)), out(count);
    for_each_backend([&](Backend& be) { be.add(out.on(be), a.on(be), b.on(be), count); });
    expect_match(out, kExact, "add");
    for_each_backend([&](Backend& be) { be.add(a.on(be), a.on(be), b.on(be), count); });
    expect_match(a, kExact, "add, out aliasing a");
    for_each_backend([&](Backend& be) { be.accumulate(out.on(be), b.on(be), count); });
    expect_match(out, kExact, "accumulate");
    for_each_backend([&](Backend& be) { be.scale(out.on(be), -0.37f, count); });
    expect_match(out, kExact, "scale");
  }
}

TEST_F(ElementwiseConformance, SumOfSquares) {
  // Both sum fp32 squares (exact in double) in double, in different orders: the relative
  // difference is about count * 2^-53, under 1e-9 even for a billion elements.
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    PairedBuffer x(random_floats(count, 4, -3.0f, 3.0f));
    const double cpu = cpu_backend().sum_of_squares(x.on(cpu_backend()), count);
    const double device = device_backend().sum_of_squares(x.on(device_backend()), count);
    EXPECT_NEAR(device, cpu, 1e-12 * static_cast<double>(count) * std::fabs(cpu) + 1e-300);
  }
}

// A model's gradients in one call: ranges of very different sizes (one block, many, the cap),
// an empty one, gaps left out.
TEST_F(ElementwiseConformance, SumOfSquaresOfRanges) {
  const std::size_t count = 3000000;
  PairedBuffer x(random_floats(count, 5, -3.0f, 3.0f));
  const std::vector<BufferRange> ranges = {
      {0, 768}, {768, 0}, {1000, 2359296}, {2360300, 1}, {2360400, 600000}};
  const double cpu = cpu_backend().sum_of_squares_of_ranges(x.on(cpu_backend()), ranges);
  const double device = device_backend().sum_of_squares_of_ranges(x.on(device_backend()), ranges);
  EXPECT_NEAR(device, cpu, 1e-12 * static_cast<double>(count) * std::fabs(cpu));
  EXPECT_EQ(device, device_backend().sum_of_squares_of_ranges(x.on(device_backend()), ranges));
  EXPECT_EQ(device_backend().sum_of_squares_of_ranges(x.on(device_backend()), {}), 0.0);
}

TEST_F(ElementwiseConformance, AdamWThreeSteps) {
  // m and v: two products and a sum (the GPU may fuse them into an FMA): a few ulps of the terms
  // (at most 1 in size), so an absolute part for sums that cancel. The parameter changes by
  // lr * O(1) per step; that update carries a few ulps of error of its own (sqrt, division,
  // FMA), so over 3 steps the absolute part is 3 * lr * 16 eps (measured on an H100: 2.3e-10).
  const Tolerance moments{4.0 * kFloatEps, 8.0};
  const Tolerance params{3 * 1e-3 * 16 * kFloatEps, 4.0};
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    PairedBuffer p(random_floats(count, 5)), m(count), v(count);
    for (int step = 1; step <= 3; ++step) {
      PairedBuffer g(random_floats(count, 6 + static_cast<uint32_t>(step)));
      for_each_backend([&](Backend& be) {
        // Two segments (one launch on the GPU), the second without decay, a clipped gradient.
        const std::vector<AdamWSegment> segments = {{0, count / 2, 0.1f},
                                                    {count / 2, count - count / 2, 0.0f}};
        be.adamw_update(p.on(be), g.on(be), m.on(be), v.on(be), segments,
                        {1e-3f, 0.9f, 0.95f, 1e-8f, step, 0.75f});
      });
    }
    expect_match(m, moments, "adamw m");
    expect_match(v, moments, "adamw v");
    expect_match(p, params, "adamw param");
  }
}

}  // namespace
}  // namespace tessera::test
