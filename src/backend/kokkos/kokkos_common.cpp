#include "backend/kokkos/kokkos_common.hpp"

namespace tessera::kokkos {

TeamPolicy row_teams(int rows, std::size_t scratch_floats, int* level) {
  TeamPolicy policy(rows, Kokkos::AUTO);
  if (scratch_floats == 0) return policy;
  const std::size_t bytes = ScratchFloats::shmem_size(static_cast<int>(scratch_floats));
  const int chosen = bytes <= std::size_t{16} << 10 ? 0 : 1;
  if (level != nullptr) *level = chosen;
  return policy.set_scratch_size(chosen, Kokkos::PerTeam(static_cast<int>(bytes)));
}

TeamPolicy column_block_teams(int columns) {
  const int blocks = (columns + kColumnBlock - 1) / kColumnBlock;
  return TeamPolicy(blocks, Kokkos::AUTO);
}

}  // namespace tessera::kokkos
