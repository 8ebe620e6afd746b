// What every file of the Kokkos backend shares: the execution and memory space the Kokkos build
// chose, unmanaged views of the seam's raw buffers, the policies the ops run with, and the math
// functions under the name this Kokkos version gives them.
#pragma once

#include <Kokkos_Core.hpp>
#include <cstddef>
#include <cstdint>

namespace tessera::kokkos {

using ExecutionSpace = Kokkos::DefaultExecutionSpace;
using MemorySpace = ExecutionSpace::memory_space;
using Index = std::int64_t;
using FlatPolicy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<Index>>;
using TeamPolicy = Kokkos::TeamPolicy<ExecutionSpace>;
using Team = TeamPolicy::member_type;
using ScratchFloats = Kokkos::View<float*, ExecutionSpace::scratch_memory_space,
                                   Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

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

/// Every element of a flat buffer of `count`, one work item each.
inline FlatPolicy flat(std::size_t count) { return FlatPolicy(0, static_cast<Index>(count)); }

/// One team per row (of `rows`), its threads over the row's elements, with `scratch_floats` of
/// team scratch: level 0 (a GPU's shared memory) while it fits in 16 KiB, level 1 (the device's
/// main memory) beyond. `level` receives the level to read the scratch from.
TeamPolicy row_teams(int rows, std::size_t scratch_floats = 0, int* level = nullptr);

/// Columns per team of the ops that sum over rows into per-column results (parameter gradients):
/// each team owns a block of columns, each of its threads one column, and adds the rows in order,
/// so that repeated rows never race and every run gives the same bits (no atomics).
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
}  // namespace math

}  // namespace tessera::kokkos
