// add, accumulate, scale, sum_of_squares and the memory functions against the double reference.
#include <cmath>
#include <cstdint>

#include "kernel_test_support.hpp"

namespace tessera::test {
namespace {

using ElementwiseTest = BackendTest;
TESSERA_INSTANTIATE_BACKENDS(ElementwiseTest);

// Counts below and above the CPU backend's parallel threshold (32768).
const std::size_t kCounts[] = {1, 7, 33, 100003};

// One fp32 rounding of an exact result: 1 eps relative error.
constexpr Tolerance kOneRounding{0.0, 1.0};

TEST_P(ElementwiseTest, AllocateIsZeroedAndAligned) {
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{1000}}) {
    DeviceBuffer buffer(backend(), count);
    ASSERT_NE(buffer.get(), nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.get()) % 64, 0u);
    for (float value : buffer.to_host()) ASSERT_EQ(value, 0.0f);
  }
}

TEST_P(ElementwiseTest, CopyRoundTripAndFillZero) {
  // The second size is split over threads in chunks, with a partial last chunk.
  for (std::size_t count : {std::size_t{77}, std::size_t{3 << 18} + 5}) {
    const std::vector<float> host = random_floats(count, 1);
    DeviceBuffer buffer(backend(), host);
    EXPECT_EQ(buffer.to_host(), host);
    backend().fill_zero(buffer.get(), count - 1);
    std::vector<float> expected = constant_floats(count, 0.0f);
    expected.back() = host.back();  // past the count: untouched
    EXPECT_EQ(buffer.to_host(), expected);
  }
}

TEST_P(ElementwiseTest, AddMatchesReferenceAndOverwrites) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    const std::vector<float> a = random_floats(count, 2), b = random_floats(count, 3);
    Vector expected(count);
    for (std::size_t i = 0; i < count; ++i) expected[i] = double{a[i]} + double{b[i]};
    DeviceBuffer da(backend(), a), db(backend(), b);
    DeviceBuffer out(backend(), constant_floats(count, kGarbage));
    backend().add(out.get(), da.get(), db.get(), count);
    expect_close(out.to_host(), expected, kOneRounding, "add");
    backend().add(da.get(), da.get(), db.get(), count);  // out aliases a
    expect_close(da.to_host(), expected, kOneRounding, "add with out == a");
  }
}

TEST_P(ElementwiseTest, AccumulateAddsIntoOutput) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    const std::vector<float> base = random_floats(count, 4), in = random_floats(count, 5);
    DeviceBuffer out(backend(), base), din(backend(), in);
    backend().accumulate(out.get(), din.get(), count);
    backend().accumulate(out.get(), din.get(), count);
    Vector expected(count);
    for (std::size_t i = 0; i < count; ++i) expected[i] = double{base[i]} + 2.0 * in[i];
    expect_close(out.to_host(), expected, {0.0, 4.0}, "accumulate twice");  // two roundings
  }
}

TEST_P(ElementwiseTest, ScaleMultipliesInPlace) {
  for (std::size_t count : kCounts) {
    SCOPED_TRACE(count);
    const std::vector<float> x = random_floats(count, 6);
    DeviceBuffer dx(backend(), x);
    backend().scale(dx.get(), -0.37f, count);
    Vector expected(count);
    for (std::size_t i = 0; i < count; ++i) expected[i] = double{x[i]} * double{-0.37f};
    expect_close(dx.to_host(), expected, kOneRounding, "scale");
  }
}

TEST_P(ElementwiseTest, SumOfSquaresIsDoubleAccurateAndDeterministic) {
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000003}}) {
    SCOPED_TRACE(count);
    const std::vector<float> x = random_floats(count, 7, -3.0f, 3.0f);
    DeviceBuffer dx(backend(), x);
    const double expected = reference::sum_of_squares(to_double(x));
    const double got = backend().sum_of_squares(dx.get(), count);
    // Products of floats are exact in double; only the additions round (about count * 1e-16).
    EXPECT_NEAR(got, expected, 1e-13 * expected + 1e-300);
    EXPECT_EQ(got, backend().sum_of_squares(dx.get(), count));
  }
}

// The gradient norm's form: many tensors of one buffer, gaps between them left out, in one call.
TEST_P(ElementwiseTest, SumOfSquaresOfRangesCoversExactlyTheRanges) {
  const std::vector<float> x = random_floats(300000, 8, -3.0f, 3.0f);
  DeviceBuffer dx(backend(), x);
  const std::vector<BufferRange> ranges = {{0, 1},      {5, 0},         {7, 768},
                                           {800, 2304}, {4000, 250000}, {254000, 46000}};
  Vector covered;
  for (const BufferRange& range : ranges) {
    for (std::size_t i = range.offset; i < range.offset + range.count; ++i) covered.push_back(x[i]);
  }
  const double expected = reference::sum_of_squares(covered);
  const double got = backend().sum_of_squares_of_ranges(dx.get(), ranges);
  EXPECT_NEAR(got, expected, 1e-13 * expected);
  EXPECT_EQ(got, backend().sum_of_squares_of_ranges(dx.get(), ranges));
  EXPECT_EQ(backend().sum_of_squares_of_ranges(dx.get(), {}), 0.0);
}

TEST_P(ElementwiseTest, SumOfSquaresKeepsSmallTermsNextToALargeOne) {
  // 1e8 + 1e6 * 1e-4: a float accumulator would round every small term away.
  std::vector<float> x(1000001, 1e-2f);
  x[0] = 1e4f;
  DeviceBuffer dx(backend(), x);
  const double expected = reference::sum_of_squares(to_double(x));
  EXPECT_NEAR(backend().sum_of_squares(dx.get(), x.size()), expected, 1e-12 * expected);
}

}  // namespace
}  // namespace tessera::test
