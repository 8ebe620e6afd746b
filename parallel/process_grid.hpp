// The process grid: which data-, tensor- and pipeline-parallel position each rank holds.
//
// Pure arithmetic, no MPI. A rank's coordinates are its digits in a mixed-radix number whose
// digits are ordered by the order string, fastest-varying first. With the default "tp-dp-pp":
//
//   rank = tp + tp_size * (dp + dp_size * pp)
//
// so the ranks of one tensor-parallel group are consecutive (and stay inside a node, where the
// all-reduces of every layer are cheap), data-parallel peers are tp ranks apart, and pipeline
// stages are tp * dp ranks apart. ParallelContext turns these groups into communicators.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

/// The three axes of the grid.
enum class GridAxis { tp, dp, pp };

/// Number of ranks along each axis. `dp = 0` means "whatever the world size leaves":
/// resolve it with `resolve_grid_shape`.
struct GridShape {
  int dp = 1;
  int tp = 1;
  int pp = 1;

  int world_size() const { return dp * tp * pp; }
  /// "dp=2 tp=2 pp=1", as logs, metrics, job scripts and reports write a layout.
  std::string str() const;
  int size(GridAxis axis) const;
  bool operator==(const GridShape&) const = default;
};

/// One rank's position: 0 <= dp < shape.dp and so on.
struct GridCoordinates {
  int dp = 0;
  int tp = 0;
  int pp = 0;

  int coordinate(GridAxis axis) const;
  void set(GridAxis axis, int value);
  bool operator==(const GridCoordinates&) const = default;
};

/// The order of the axes in rank numbering, fastest-varying first, e.g. "tp-dp-pp" (default).
class GridOrder {
 public:
  GridOrder();  ///< "tp-dp-pp"
  /// Parses "tp-dp-pp" and its permutations; throws UsageError otherwise.
  explicit GridOrder(std::string_view text);

  /// The axis at `position` (0 = fastest-varying).
  GridAxis axis(int position) const { return fastest_first_[static_cast<std::size_t>(position)]; }
  std::string str() const;

 private:
  std::array<GridAxis, 3> fastest_first_;
};

std::string_view axis_name(GridAxis axis);

GridCoordinates coordinates_of(int rank, const GridShape& shape, const GridOrder& order);
int rank_of(const GridCoordinates& coordinates, const GridShape& shape, const GridOrder& order);

/// The world ranks that share every coordinate with `rank` except the one on `axis`, in
/// ascending order of that coordinate (so a rank's index in the list is its coordinate on the
/// axis). Example, shape dp=2 tp=2 pp=2, default order: tp group of rank 5 = {4, 5}, dp group
/// = {5, 7}, pp group = {1, 5}.
std::vector<int> group_members(int rank, GridAxis axis, const GridShape& shape,
                               const GridOrder& order);

/// The model-parallel group: every rank with the same dp coordinate (tp x pp ranks, one model
/// replica), ascending world rank. The global gradient norm sums over this group.
std::vector<int> model_parallel_group_members(int rank, const GridShape& shape,
                                              const GridOrder& order);

/// A number that is equal for all members of `rank`'s group on `axis` and different between
/// groups: the smallest world rank in the group. Used as the colour of MPI_Comm_split.
int group_id(int rank, GridAxis axis, const GridShape& shape, const GridOrder& order);
int model_parallel_group_id(int rank, const GridShape& shape, const GridOrder& order);

/// The shape with dp filled in from the world size when given as 0; throws UsageError when
/// dp x tp x pp does not equal the world size or an axis size is not positive.
GridShape resolve_grid_shape(int world_size, GridShape shape);

}  // namespace tessera
