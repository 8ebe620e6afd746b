// Element-wise ops and sums of squares of the Kokkos backend.
#include "backend/kokkos/kokkos_backend_impl.hpp"
#include "backend/kokkos/kokkos_common.hpp"
#include "backend/kokkos/team_loops.hpp"

namespace tessera::kokkos {

void KokkosBackend::add(float* out, const float* a, const float* b, std::size_t count) {
  const Vector<float> o(out, count);
  const Vector<const float> x(a, count), y(b, count);
  Kokkos::parallel_for(
      "tessera::add", flat(count), KOKKOS_LAMBDA(const Index i) { o(i) = x(i) + y(i); });
}

void KokkosBackend::accumulate(float* out, const float* in, std::size_t count) {
  const Vector<float> o(out, count);
  const Vector<const float> x(in, count);
  Kokkos::parallel_for(
      "tessera::accumulate", flat(count), KOKKOS_LAMBDA(const Index i) { o(i) += x(i); });
}

void KokkosBackend::scale(float* x, float factor, std::size_t count) {
  const Vector<float> v(x, count);
  Kokkos::parallel_for(
      "tessera::scale", flat(count), KOKKOS_LAMBDA(const Index i) { v(i) *= factor; });
}

double KokkosBackend::sum_of_squares(const float* x, std::size_t count) {
  const Vector<const float> v(x, count);
  double sum = 0.0;
  const Index n = static_cast<Index>(count);
  Kokkos::parallel_reduce(
      "tessera::sum_of_squares", flat(static_cast<std::size_t>(span_items(n))),
      KOKKOS_LAMBDA(const Index item, double& partial) {
        partial += span_reduce<Plus>(item * kSpan, span_end(item, n), [&](const Index i) {
          return static_cast<double>(v(i)) * static_cast<double>(v(i));
        });
      },
      sum);
  return sum;
}

double KokkosBackend::sum_of_squares_of_ranges(const float* base,
                                               const std::vector<BufferRange>& ranges) {
  if (ranges.empty()) return 0.0;
  // One launch for all ranges (a team each) and one copy of their sums back, instead of a wait
  // for the device per range; the sums are then added in the ranges' order, on the host.
  const int count = static_cast<int>(ranges.size());
  Kokkos::View<std::size_t* [2], MemorySpace> bounds("tessera::range_bounds", ranges.size());
  const auto host_bounds = Kokkos::create_mirror_view(bounds);
  std::size_t end = 0;
  for (int r = 0; r < count; ++r) {
    host_bounds(r, 0) = ranges[r].offset;
    host_bounds(r, 1) = ranges[r].count;
    end = std::max(end, ranges[r].offset + ranges[r].count);
  }
  Kokkos::deep_copy(bounds, host_bounds);
  Kokkos::View<double*, MemorySpace> sums("tessera::range_sums", ranges.size());
  const Vector<const float> v(base, end);
  Kokkos::parallel_for(
      "tessera::sum_of_squares_of_ranges", TeamPolicy(count, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& team) {
        const int r = team.league_rank();
        const std::size_t offset = bounds(r, 0);
        const double sum =
            team_reduce<Plus, double>(team, static_cast<Index>(bounds(r, 1)), [&](const Index i) {
              const double x = v(offset + static_cast<std::size_t>(i));
              return x * x;
            });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { sums(r) = sum; });
      });
  const auto host_sums = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sums);
  double total = 0.0;
  for (int r = 0; r < count; ++r) total += host_sums(r);
  return total;
}

}  // namespace tessera::kokkos
