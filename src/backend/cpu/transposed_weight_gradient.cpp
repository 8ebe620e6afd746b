// The transposed weight-gradient path (see transposed_weight_gradient.hpp).
#include "backend/cpu/transposed_weight_gradient.hpp"

#include <algorithm>
#include <cstddef>

#include "backend/cpu/cpu_backend.hpp"

namespace tessera::cpu {
namespace {

/// Out/in ratio from which the transposed path is faster (measured: 21 gains 35 %, 4 is even).
constexpr int kTransposedRatio = 8;

/// Tile edge of the transposed add: a 16 x 16 tile of floats is 16 cache lines each way.
constexpr int kTile = 16;

}  // namespace

bool weight_gradient_goes_transposed(int in_features, int out_features) {
  return out_features >= kTransposedRatio * in_features;
}

void add_transposed(float* destination, const float* source, int rows, int columns) {
  const int column_tiles = (columns + kTile - 1) / kTile;
  const std::size_t count = static_cast<std::size_t>(rows) * columns;
#pragma omp parallel for schedule(static) if (count >= kParallelThreshold)
  for (int tile = 0; tile < column_tiles; ++tile) {
    const int column_end = std::min(columns, (tile + 1) * kTile);
    for (int row_begin = 0; row_begin < rows; row_begin += kTile) {
      const int row_end = std::min(rows, row_begin + kTile);
      for (int c = tile * kTile; c < column_end; ++c) {
        float* out = destination + static_cast<std::size_t>(c) * rows;
#pragma omp simd
        for (int r = row_begin; r < row_end; ++r) {
          out[r] += source[static_cast<std::size_t>(r) * columns + c];
        }
      }
    }
  }
}

}  // namespace tessera::cpu
