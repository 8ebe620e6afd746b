// RowExchange: the blocks of a tensor regrouped into ranges of whole rows before they are
// written, and back after such ranges are read, so that each rank moves one long contiguous
// range of the file. Not part of the public API.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
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
/// between the writers first, at memory speed, makes every write one long run; and reads the
/// same way.
///
/// Whether the blocks of `tensor` are regrouped: they tile it, some block is not a range of
/// whole rows, and every dimension fits the int that MPI's subarray types take.
bool deals_rows(const PlannedDataset& tensor);

/// The rows of `tensor` dealt out in order, an equal share to the owner of each of its blocks
/// (slice j to tensor.blocks[j]'s owner).
std::vector<RowSlice> deal_rows(const PlannedDataset& tensor);

/// Elements in one row of a tensor of `shape` (all of every dimension after the first).
int64_t row_elements(const std::vector<int64_t>& shape);

/// The buffers that a rank's dealt rows pass through, two used in turn: one tensor's rows are
/// exchanged while the other's move to or from the file. With one buffer, each tensor's
/// exchange waited for the last tensor's transfers to end, and the device idled through the
/// exchange (at tp=2, every row-parallel weight and its two moments).
class DealtRows {
 public:
  /// Two buffers, each as large as the most elements `rank` is dealt of any one tensor of
  /// `plan` that deals_rows. Throws std::bad_alloc.
  DealtRows(const std::vector<PlannedDataset>& plan, int rank);
  /// The buffer for the next tensor that deals rows: the one not handed out last time.
  float* next();

 private:
  std::unique_ptr<float[]> buffers_[2];
  int last_ = 1;
};

/// Collective over the owners of `tensor`'s blocks (others return at once), for a write: sends
/// each of this rank's blocks (`blocks[i]`: the data of tensor.blocks[i] where this rank owns
/// it, else null) to the owners of the slices it meets, and fills `slices[m]` (the data of this
/// rank's m-th slice in deal_rows order: rows x the later dimensions) from the blocks that meet
/// it. Every rank posts its transfers in one global (block, slice) order, so the messages
/// between any two ranks match in order.
void gather_rows(MPI_Comm comm, const PlannedDataset& tensor,
                 const std::vector<const float*>& blocks, const std::vector<float*>& slices);

/// The reverse, for a read: fills each of this rank's blocks from the dealt slices that meet it.
void scatter_rows(MPI_Comm comm, const PlannedDataset& tensor,
                  const std::vector<const float*>& slices, const std::vector<float*>& blocks);

}  // namespace tessera::checkpoint_detail
