#include "io/checkpoint/row_exchange.hpp"

#include <algorithm>
#include <climits>

namespace tessera::checkpoint_detail {
namespace {

/// Its own tag, so that no other message between the writers can match a piece.
constexpr int kRowExchangeTag = 17;

bool whole_rows(const std::vector<int64_t>& shape, const Box& box) {
  for (std::size_t d = 1; d < shape.size(); ++d) {
    if (box.shape[d] != shape[d]) return false;
  }
  return true;
}

std::vector<int> as_ints(const std::vector<int64_t>& values) {
  return {values.begin(), values.end()};  // callers checked that every value fits
}

/// The committed MPI type of the part of `part_shape` at `part_start` inside a row-major float
/// array of `array_shape`.
MPI_Datatype part_type(const std::vector<int64_t>& array_shape,
                       const std::vector<int64_t>& part_shape,
                       const std::vector<int64_t>& part_start) {
  const std::vector<int> sizes = as_ints(array_shape), subsizes = as_ints(part_shape),
                         starts = as_ints(part_start);
  MPI_Datatype type;
  MPI_Type_create_subarray(static_cast<int>(sizes.size()), sizes.data(), subsizes.data(),
                           starts.data(), MPI_ORDER_C, MPI_FLOAT, &type);
  MPI_Type_commit(&type);
  return type;
}

}  // namespace

bool deals_rows(const PlannedDataset& tensor) {
  if (tensor.shape.size() < 2 || tensor.hashers.empty()) return false;
  if (std::any_of(tensor.shape.begin(), tensor.shape.end(),
                  [](int64_t n) { return n > INT_MAX; })) {
    return false;
  }
  return std::any_of(tensor.blocks.begin(), tensor.blocks.end(),
                     [&](const OwnedBlock& block) { return !whole_rows(tensor.shape, block.box); });
}

int64_t row_elements(const std::vector<int64_t>& shape) {
  return shape.empty() ? 1 : element_count({shape.begin() + 1, shape.end()});
}

DealtRows::DealtRows(const std::vector<PlannedDataset>& plan, int rank) {
  int64_t largest = 0;
  for (const PlannedDataset& tensor : plan) {
    if (!deals_rows(tensor)) continue;
    int64_t rows = 0;
    for (const RowSlice& slice : deal_rows(tensor)) rows += slice.rank == rank ? slice.rows : 0;
    largest = std::max(largest, rows * row_elements(tensor.shape));
  }
  for (auto& buffer : buffers_) buffer.reset(new float[static_cast<std::size_t>(largest)]);
}

float* DealtRows::next() {
  last_ = 1 - last_;
  return buffers_[last_].get();
}

std::vector<RowSlice> deal_rows(const PlannedDataset& tensor) {
  const auto count = static_cast<int64_t>(tensor.blocks.size());
  const int64_t rows = tensor.shape.empty() ? 1 : tensor.shape[0];
  std::vector<RowSlice> slices;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t first = rows * j / count;
    const int64_t next = rows * (j + 1) / count;
    slices.push_back({tensor.blocks[static_cast<std::size_t>(j)].rank, first, next - first});
  }
  return slices;
}

namespace {

/// One side of a part's transfer: the part inside block or slice `index` (of the tensor's
/// blocks, or of this rank's slices), its MPI type there, and the rank that holds it.
struct PartSide {
  std::size_t index;
  MPI_Datatype type;
  int rank;
};

/// Moves every part that a block i and a dealt slice j share (their common rows) from `from`
/// (the blocks when `to_rows`, else this rank's slices) to `to` (the other), posting each
/// transfer this rank takes part in, in one global (i, j) order on every rank.
void move_parts(MPI_Comm comm, const PlannedDataset& tensor, bool to_rows,
                const std::vector<const float*>& from, const std::vector<float*>& to) {
  const int rank = comm_rank(comm);
  const std::vector<RowSlice> dealt = deal_rows(tensor);
  std::vector<std::size_t> my_slice(dealt.size(), 0);  // j's index among this rank's slices
  for (std::size_t j = 0, m = 0; j < dealt.size(); ++j) {
    if (dealt[j].rank == rank) my_slice[j] = m++;
  }
  std::vector<MPI_Request> transfers;
  std::vector<MPI_Datatype> types;
  for (std::size_t i = 0; i < tensor.blocks.size(); ++i) {
    const OwnedBlock& block = tensor.blocks[i];
    const int64_t block_end = block.box.offset[0] + block.box.shape[0];
    for (std::size_t j = 0; j < dealt.size(); ++j) {
      const RowSlice& slice = dealt[j];
      const int64_t first = std::max(block.box.offset[0], slice.first_row);
      const int64_t end = std::min(block_end, slice.first_row + slice.rows);
      if (first >= end || (block.rank != rank && slice.rank != rank)) continue;
      std::vector<int64_t> part_shape = block.box.shape;
      part_shape[0] = end - first;
      std::vector<int64_t> in_block(part_shape.size(), 0);
      in_block[0] = first - block.box.offset[0];
      std::vector<int64_t> slice_shape = tensor.shape;
      slice_shape[0] = slice.rows;
      std::vector<int64_t> in_slice = block.box.offset;
      in_slice[0] = first - slice.first_row;
      types.push_back(part_type(block.box.shape, part_shape, in_block));
      const PartSide block_side{i, types.back(), block.rank};
      types.push_back(part_type(slice_shape, part_shape, in_slice));
      const PartSide slice_side{my_slice[j], types.back(), slice.rank};
      const PartSide& source = to_rows ? block_side : slice_side;
      const PartSide& target = to_rows ? slice_side : block_side;
      if (source.rank == rank) {
        MPI_Isend(from[source.index], 1, source.type, target.rank, kRowExchangeTag, comm,
                  &transfers.emplace_back());
      }
      if (target.rank == rank) {
        MPI_Irecv(to[target.index], 1, target.type, source.rank, kRowExchangeTag, comm,
                  &transfers.emplace_back());
      }
    }
  }
  MPI_Waitall(static_cast<int>(transfers.size()), transfers.data(), MPI_STATUSES_IGNORE);
  for (MPI_Datatype& type : types) MPI_Type_free(&type);
}

}  // namespace

void gather_rows(MPI_Comm comm, const PlannedDataset& tensor,
                 const std::vector<const float*>& blocks, const std::vector<float*>& slices) {
  move_parts(comm, tensor, /*to_rows=*/true, blocks, slices);
}

void scatter_rows(MPI_Comm comm, const PlannedDataset& tensor,
                  const std::vector<const float*>& slices, const std::vector<float*>& blocks) {
  move_parts(comm, tensor, /*to_rows=*/false, slices, blocks);
}

}  // namespace tessera::checkpoint_detail
