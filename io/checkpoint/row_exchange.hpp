// RowExchange: the blocks of a tensor regrouped into ranges of whole rows before they are
// written, so that each rank writes one long contiguous range. Not part of the public API.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera::checkpoint_detail {

/// Rows [first_row, first_row + rows) of a tensor (all of every later dimension), and the rank
/// that writes them.
struct RowSlice {
  int rank = 0;
  int64_t first_row = 0;
  int64_t rows = 0;
};

/// Why: a tensor-parallel layer's column blocks are a short run per row in the file (an 8 KiB
/// piece of each 16 KiB row of an MLP projection at tp=2). Written as they are, every row is a
/// small write, through the page cache or one synchronous device request each (0.23-0.5 GB/s
/// at tp=2 where whole-row blocks write at 1.5: bench/bench_checkpoint.py). Moving the pieces
/// between the writers first, at memory speed, makes every write one long run.
///
/// Whether the blocks of `tensor` need it: some block is not a range of whole rows, and every
/// dimension fits the int that MPI's subarray types take.
bool needs_row_exchange(const PlannedDataset& tensor);

/// The rows of `tensor` dealt out in order, an equal share to the owner of each of its blocks
/// (slice j to tensor.blocks[j]'s owner).
std::vector<RowSlice> deal_rows(const PlannedDataset& tensor);

/// Collective over the owners of `tensor`'s blocks (others return at once): sends each of this
/// rank's blocks (`mine[j]`: the data of tensor.blocks[j] where this rank owns it, else null)
/// to the owners of the slices it meets, and fills `slices[m]` (the data of this rank's m-th
/// slice in deal_rows order, rows x the later dimensions) from the blocks that meet it. Posts
/// every transfer in one global (block, slice) order on every rank, so the messages between
/// any two ranks match in order.
void exchange_rows(MPI_Comm comm, const PlannedDataset& tensor,
                   const std::vector<const float*>& mine, const std::vector<float*>& slices);

}  // namespace tessera::checkpoint_detail
