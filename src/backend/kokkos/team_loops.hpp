// Loops of a team over a row's elements, written so that both kinds of device run them well.
// Kokkos's TeamThreadRange steps by the team's size, a run-time value, so a host compiler sees
// no unit-stride loop and runs every element scalar (7 to 10 times slower than the CPU backend's
// norms and softmaxes). These loops hand each work item a span of contiguous elements instead:
// on a host a span of kSpan elements, looped with unit stride and reduced in kLanes independent
// lanes (vector registers, no chain of dependent additions); on a GPU a span of one element, so
// that adjacent threads read adjacent elements as before. The order of every reduction is fixed
// by the build: every run gives the same bits.
#pragma once

#include <type_traits>

#include "backend/kokkos/kokkos_common.hpp"

namespace tessera::kokkos {

/// Whether the kernels run on the host's cores (Serial, OpenMP, Threads) rather than a GPU.
inline constexpr bool kHostExecution =
    std::is_same_v<ExecutionSpace, Kokkos::DefaultHostExecutionSpace>;

/// Independent accumulators of a reduction within one work item, and elements per work item.
inline constexpr int kLanes = kHostExecution ? 16 : 1;
inline constexpr int kSpan = kHostExecution ? 256 : 1;

/// The reductions: how two partial results combine, from what, and Kokkos's reducer of the
/// totals across work items.
struct Plus {
  template <class T>
  using Reducer = Kokkos::Sum<T>;
  template <class T>
  static KOKKOS_INLINE_FUNCTION T identity() {
    return T(0);
  }
  template <class T>
  static KOKKOS_INLINE_FUNCTION T combine(T a, T b) {
    return a + b;
  }
};
struct Largest {
  template <class T>
  using Reducer = Kokkos::Max<T>;
  template <class T>
  static KOKKOS_INLINE_FUNCTION T identity() {
    return Kokkos::reduction_identity<T>::max();
  }
  template <class T>
  static KOKKOS_INLINE_FUNCTION T combine(T a, T b) {  // a ternary: GCC vectorises it, not std::max
    return a > b ? a : b;
  }
};

/// Op's reduction of term(i) over first <= i < end, in the type term returns: element i into
/// lane i % kLanes, then the lanes pairwise. A span is short (kSpan), so float lanes keep the
/// rounding of a sum near 2^-24 sqrt(kSpan) relative; double lanes would halve the vector width
/// and stop GCC vectorising the loop at all (8x slower).
template <class Op, class Term>
KOKKOS_INLINE_FUNCTION auto span_reduce(Index first, Index end, const Term& term) {
  using T = decltype(term(first));
  T lanes[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) lanes[lane] = Op::template identity<T>();
  Index i = first;
  for (; i + kLanes <= end; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane)
      lanes[lane] = Op::combine(lanes[lane], term(i + lane));
  }
  for (int lane = 0; i + lane < end; ++lane) lanes[lane] = Op::combine(lanes[lane], term(i + lane));
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int lane = 0; lane < width; ++lane)
      lanes[lane] = Op::combine(lanes[lane], lanes[lane + width]);
  }
  return lanes[0];
}

/// Work items of kSpan elements covering `count`.
KOKKOS_INLINE_FUNCTION Index span_items(Index count) { return (count + kSpan - 1) / kSpan; }

/// The end of work item `item`'s span within `count`.
KOKKOS_INLINE_FUNCTION Index span_end(Index item, Index count) {
  return (item + 1) * kSpan < count ? (item + 1) * kSpan : count;
}

/// Op's reduction of term(j) over j < count by the threads of `team`: spans in the type term
/// returns, their results combined in Total (double for long sums).
template <class Op, class Total, class Term>
KOKKOS_INLINE_FUNCTION Total team_reduce(const Team& team, Index count, const Term& term) {
  Total result = Op::template identity<Total>();
  Kokkos::parallel_reduce(
      Kokkos::TeamThreadRange(team, span_items(count)),
      [&](const Index item, Total& partial) {
        partial =
            Op::combine(partial, Total(span_reduce<Op>(item * kSpan, span_end(item, count), term)));
      },
      typename Op::template Reducer<Total>(result));
  return result;
}
/// body(j) for every j < count by the threads of `team`.
template <class Body>
KOKKOS_INLINE_FUNCTION void team_for(const Team& team, Index count, const Body& body) {
  Kokkos::parallel_for(Kokkos::TeamThreadRange(team, span_items(count)), [&](const Index item) {
    const Index end = span_end(item, count);
    for (Index j = item * kSpan; j < end; ++j) body(j);
  });
}

/// For every column c of [begin, end): finish(c, sum over r < rows of term(r, c)), the rows added
/// in order. Each thread of `team` takes kLanes adjacent columns (one on a GPU, where adjacent
/// threads then read adjacent columns; a vector's width on a host, the rows looped outside).
template <class Term, class Finish>
KOKKOS_INLINE_FUNCTION void team_column_sums(const Team& team, Index begin, Index end, Index rows,
                                             const Term& term, const Finish& finish) {
  Kokkos::parallel_for(
      Kokkos::TeamThreadRange(team, (end - begin + kLanes - 1) / kLanes), [&](const Index group) {
        const Index first = begin + group * kLanes;
        float sums[kLanes] = {};
        if (end - first >= kLanes) {  // a constant trip count: the lanes stay in a register
          for (Index r = 0; r < rows; ++r) {
            for (int lane = 0; lane < kLanes; ++lane) sums[lane] += term(r, first + lane);
          }
        } else {
          for (Index r = 0; r < rows; ++r) {
            for (int lane = 0; first + lane < end; ++lane) sums[lane] += term(r, first + lane);
          }
        }
        for (int lane = 0; lane < kLanes && first + lane < end; ++lane)
          finish(first + lane, sums[lane]);
      });
}

}  // namespace tessera::kokkos
