#include "parallel/process_grid.hpp"

#include <algorithm>
#include <sstream>

#include "core/error.hpp"

namespace tessera {

namespace {

constexpr std::array<GridAxis, 3> kAllAxes = {GridAxis::tp, GridAxis::dp, GridAxis::pp};

template <typename... Parts>
std::string join(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// Distance in ranks between neighbours along `axis`: the product of the faster axes' sizes.
int stride_of(GridAxis axis, const GridShape& shape, const GridOrder& order) {
  int stride = 1;
  for (int position = 0; order.axis(position) != axis; ++position) {
    stride *= shape.size(order.axis(position));
  }
  return stride;
}

void check_rank(int rank, const GridShape& shape) {
  TESSERA_CHECK(rank >= 0 && rank < shape.world_size(),
                join("rank ", rank, " outside a grid of ", shape.world_size()));
}

}  // namespace

/// The member of a (tp, dp, pp) triple that `axis` names.
template <class Triple>
auto& member(Triple& triple, GridAxis axis) {
  switch (axis) {
    case GridAxis::dp:
      return triple.dp;
    case GridAxis::pp:
      return triple.pp;
    case GridAxis::tp:
      break;
  }
  return triple.tp;
}

int GridShape::size(GridAxis axis) const { return member(*this, axis); }

int GridCoordinates::coordinate(GridAxis axis) const { return member(*this, axis); }

void GridCoordinates::set(GridAxis axis, int value) { member(*this, axis) = value; }

std::string GridShape::str() const { return join("dp=", dp, " tp=", tp, " pp=", pp); }

std::string_view axis_name(GridAxis axis) {
  switch (axis) {
    case GridAxis::tp:
      return "tp";
    case GridAxis::dp:
      return "dp";
    case GridAxis::pp:
      return "pp";
  }
  return "?";
}

GridOrder::GridOrder() : fastest_first_(kAllAxes) {}

GridOrder::GridOrder(std::string_view text) : fastest_first_(kAllAxes) {
  std::vector<GridAxis> parsed;
  bool valid = true;
  for (std::size_t begin = 0; valid && begin <= text.size();) {
    const std::size_t dash = std::min(text.find('-', begin), text.size());
    const std::string_view name = text.substr(begin, dash - begin);
    const auto match = std::find_if(kAllAxes.begin(), kAllAxes.end(),
                                    [&](GridAxis a) { return axis_name(a) == name; });
    valid =
        match != kAllAxes.end() && std::find(parsed.begin(), parsed.end(), *match) == parsed.end();
    if (valid) parsed.push_back(*match);
    begin = dash + 1;
  }
  if (!valid || parsed.size() != 3) {
    throw UsageError(join("parallel.order = \"", text,
                          "\" is not an order of the axes tp, dp, pp; write e.g. \"tp-dp-pp\" "
                          "(fastest-varying first)"));
  }
  std::copy(parsed.begin(), parsed.end(), fastest_first_.begin());
}

std::string GridOrder::str() const {
  return join(axis_name(fastest_first_[0]), "-", axis_name(fastest_first_[1]), "-",
              axis_name(fastest_first_[2]));
}

GridCoordinates coordinates_of(int rank, const GridShape& shape, const GridOrder& order) {
  check_rank(rank, shape);
  GridCoordinates coordinates;
  int rest = rank;
  for (int position = 0; position < 3; ++position) {
    const GridAxis axis = order.axis(position);
    coordinates.set(axis, rest % shape.size(axis));
    rest /= shape.size(axis);
  }
  return coordinates;
}

int rank_of(const GridCoordinates& coordinates, const GridShape& shape, const GridOrder& order) {
  int rank = 0;
  for (GridAxis axis : kAllAxes) {
    const int c = coordinates.coordinate(axis);
    TESSERA_CHECK(c >= 0 && c < shape.size(axis),
                  join(axis_name(axis), " coordinate ", c, " outside 0..", shape.size(axis) - 1));
    rank += c * stride_of(axis, shape, order);
  }
  return rank;
}

std::vector<int> group_members(int rank, GridAxis axis, const GridShape& shape,
                               const GridOrder& order) {
  GridCoordinates coordinates = coordinates_of(rank, shape, order);
  std::vector<int> members;
  members.reserve(static_cast<std::size_t>(shape.size(axis)));
  for (int c = 0; c < shape.size(axis); ++c) {
    coordinates.set(axis, c);
    members.push_back(rank_of(coordinates, shape, order));
  }
  return members;
}

std::vector<int> model_parallel_group_members(int rank, const GridShape& shape,
                                              const GridOrder& order) {
  const int dp = coordinates_of(rank, shape, order).dp;
  std::vector<int> members;
  members.reserve(static_cast<std::size_t>(shape.tp * shape.pp));
  for (int pp = 0; pp < shape.pp; ++pp) {
    for (int tp = 0; tp < shape.tp; ++tp) {
      members.push_back(rank_of({.dp = dp, .tp = tp, .pp = pp}, shape, order));
    }
  }
  std::sort(members.begin(), members.end());
  return members;
}

int group_id(int rank, GridAxis axis, const GridShape& shape, const GridOrder& order) {
  GridCoordinates coordinates = coordinates_of(rank, shape, order);
  coordinates.set(axis, 0);
  return rank_of(coordinates, shape, order);
}

int model_parallel_group_id(int rank, const GridShape& shape, const GridOrder& order) {
  return rank_of({.dp = coordinates_of(rank, shape, order).dp, .tp = 0, .pp = 0}, shape, order);
}

GridShape resolve_grid_shape(int world_size, GridShape shape) {
  if (shape.tp < 1 || shape.pp < 1 || shape.dp < 0) {
    throw UsageError(join("parallel.tp = ", shape.tp, ", parallel.pp = ", shape.pp,
                          ", parallel.dp = ", shape.dp,
                          " are not all positive; tp and pp must be >= 1, dp >= 1 or 0 "
                          "(derived from the number of ranks)"));
  }
  const int model_ranks = shape.tp * shape.pp;
  if (shape.dp == 0) {
    if (world_size % model_ranks != 0) {
      throw UsageError(join("tp x pp = ", shape.tp, " x ", shape.pp, " = ", model_ranks,
                            " does not divide the job's ", world_size,
                            " ranks; launch a multiple of ", model_ranks,
                            " ranks or change parallel.tp / parallel.pp"));
    }
    shape.dp = world_size / model_ranks;
  }
  if (shape.world_size() != world_size) {
    throw UsageError(join("dp x tp x pp = ", shape.dp, " x ", shape.tp, " x ", shape.pp, " = ",
                          shape.world_size(), " but the job has ", world_size, " ranks; launch ",
                          shape.world_size(),
                          " ranks or set parallel.dp = 0 to derive dp from the job size"));
  }
  return shape;
}

}  // namespace tessera
