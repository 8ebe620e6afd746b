// What every file of the Kokkos backend shares: the execution and memory space the Kokkos build
// chose, unmanaged views of the seam's raw buffers, the policies the ops run with, and the math
// functions under the name this Kokkos version gives them.
#pragma once

#include <Kokkos_Core.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tessera::kokkos {

using ExecutionSpace = Kokkos::DefaultExecutionSpace;
using MemorySpace = ExecutionSpace::memory_space;
using Index = std::int64_t;
using FlatPolicy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<Index>>;
using TeamPolicy = Kokkos::TeamPolicy<ExecutionSpace>;
using Team = TeamPolicy::member_type;

/// The seam's buffers seen as Kokkos views (they are allocated in MemorySpace by the backend).
template <class T>
using Vector =
    Kokkos::View<T*, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
template <class T>
using Matrix =
    Kokkos::View<T**, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

/// Whether the host can read the backend's buffers directly (Serial, OpenMP: yes; GPUs: no).
inline constexpr bool kHostAccessible =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible;

/// Whether the buffers are the host's own memory (Serial, OpenMP, Threads), allocated as the CPU
/// backend allocates them.
inline constexpr bool kHostMemory = std::is_same_v<MemorySpace, Kokkos::HostSpace>;

/// Every element of a flat buffer of `count`, one work item each.
inline FlatPolicy flat(std::size_t count) { return FlatPolicy(0, static_cast<Index>(count)); }

/// Every index of a grid, one work item each: multidimensional ranges, so that no work item
/// divides to find its coordinates (a 64-bit division costs more than the work of most items).
template <int Rank>
using GridPolicy =
    Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<Rank>, Kokkos::IndexType<Index>>;
inline GridPolicy<2> grid(Index rows, Index columns) {
  return GridPolicy<2>({0, 0}, {rows, columns});
}

/// One team per row (of `rows`), its threads over the row's elements (team_loops.hpp).
inline TeamPolicy row_teams(int rows) { return TeamPolicy(rows, Kokkos::AUTO); }

/// Columns per team of the ops that sum over rows into per-column results (parameter gradients):
/// each team owns a block of columns, its threads a few columns each (team_column_sums), and adds
/// the rows in order, so that repeated rows never race and every run gives the same bits (no
/// atomics).
inline constexpr int kColumnBlock = 64;
TeamPolicy column_block_teams(int columns);

/// Transposes of a matrix for gemm.
inline constexpr char kNoTranspose[] = "N";
inline constexpr char kTranspose[] = "T";

namespace math {
#if KOKKOS_VERSION >= 30700
using Kokkos::cos;
using Kokkos::exp;
using Kokkos::log;
using Kokkos::pow;
using Kokkos::sin;
using Kokkos::sqrt;
#else
using Kokkos::Experimental::cos;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::log;
using Kokkos::Experimental::pow;
using Kokkos::Experimental::sin;
using Kokkos::Experimental::sqrt;
#endif

/// exp(x) for the softmaxes and activations, as the CPU backend computes it (Cephes' expf, its
/// vector_math.hpp): x = n ln2 + r with |r| <= ln2/2, a degree-7 polynomial for exp(r), 2^n built
/// in the exponent bits; below 2 ulp on [-87, 88], inputs clamped to that range. Branch-free and
/// without a libm call, so host compilers vectorise the loops around it (libm's expf stays
/// scalar) and GPUs run it as a few FMAs.
KOKKOS_INLINE_FUNCTION float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693359375f;
  constexpr float kLn2Low = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.0f ? -87.0f : x;
  const float n = (x * kLog2e + kRound) - kRound;
  float r = x - n * kLn2High;
  r = r - n * kLn2Low;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale = 0.0f;
  std::memcpy(&scale, &bits, sizeof scale);  // the bit cast of C++20, which Kokkos 3.4 lacks
  return p * scale;
}

}  // namespace math

}  // namespace tessera::kokkos
