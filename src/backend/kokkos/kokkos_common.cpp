#include "backend/kokkos/kokkos_common.hpp"

namespace tessera::kokkos {

TeamPolicy column_block_teams(int columns) {
  const int blocks = (columns + kColumnBlock - 1) / kColumnBlock;
  return TeamPolicy(blocks, Kokkos::AUTO);
}

}  // namespace tessera::kokkos
