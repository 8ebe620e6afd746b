// read_checkpoint, read_checkpoint_metadata and verify_checkpoint: validate the file against
// what is expected before reading anything sized by it, read each rank's blocks (straight from
// the datasets' storage where it is contiguous), and verify checksums from what was read.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"
#include "io/checkpoint/direct_io.hpp"
#include "io/checkpoint/row_exchange.hpp"

namespace tessera {

using namespace checkpoint_detail;

namespace {

// A metadata attribute larger than this is not one tessera wrote.
constexpr hsize_t kMaxMetadataBytes = hsize_t{64} << 20;

/// True if every group on the way to `path` and `path` itself exist (H5Lexists fails on a
/// missing intermediate group).
bool link_exists(hid_t file_id, const std::string& path) {
  for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (H5Lexists(file_id, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) return true;
  }
}

/// Checks that the file holds `planned` as a float32 dataset of exactly the expected shape,
/// reading only the rank before the dimensions (nothing is sized by the file).
std::optional<std::string> check_dataset(hid_t file_id, const std::filesystem::path& file,
                                         const PlannedDataset& planned,
                                         const ChecksumScheme& scheme) {
  const std::string path = "/" + planned.name;
  const std::string where = "checkpoint " + file.string() + ": tensor " + path;
  if (!link_exists(file_id, path) || H5Oexists_by_name(file_id, path.c_str(), H5P_DEFAULT) <= 0) {
    return where + " is missing; was it written by a model with the same configuration?";
  }
  H5O_info_t info;
  TESSERA_H5(H5Oget_info_by_name2(file_id, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT));
  if (info.type != H5O_TYPE_DATASET) return where + " is not a dataset";
  H5Id dataset(TESSERA_H5(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT)), H5Dclose);
  H5Id type(TESSERA_H5(H5Dget_type(dataset.get())), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 4) {
    return where + " is not float32; tessera checkpoints hold float32 tensors";
  }
  H5Id space(TESSERA_H5(H5Dget_space(dataset.get())), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<int64_t> shape;
  if (rank == static_cast<int>(planned.shape.size())) {
    std::vector<hsize_t> dims(planned.shape.size());
    TESSERA_H5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr));
    shape.assign(dims.begin(), dims.end());
  }
  if (shape != planned.shape) {
    return where + " has shape " +
           (shape.empty() ? "of rank " + std::to_string(rank) : shape_string(shape)) +
           " but the model expects " + shape_string(planned.shape) +
           "; load it with the configuration that wrote it";
  }
  return stored_data_problem(dataset.get(), path, planned.shape, file, scheme);
}

using RequestsByName = std::map<std::string, std::vector<const TensorReadRequest*>>;

/// Each rank's requests by tensor name, in the order it declared them (the indices the plan's
/// hashers and copies use).
RequestsByName requests_by_name(const std::vector<TensorReadRequest>& requests) {
  RequestsByName by_name;
  for (const TensorReadRequest& request : requests) by_name[request.name].push_back(&request);
  return by_name;
}

/// This rank's requests of `planned` that it reads from the file: all but the copies of a
/// block that another rank (or another request of its own) owns and reads.
std::vector<const TensorReadRequest*> blocks_to_read(const PlannedDataset& planned,
                                                     const RequestsByName& mine, int rank) {
  const auto found = mine.find(planned.name);
  if (found == mine.end()) return {};  // a tensor of other ranks' stages
  std::vector<bool> is_copy(found->second.size(), false);
  for (const BlockCopy& copy : planned.copies) {
    if (copy.rank == rank) is_copy[static_cast<std::size_t>(copy.index)] = true;
  }
  std::vector<const TensorReadRequest*> blocks;
  for (std::size_t i = 0; i < is_copy.size(); ++i) {
    if (!is_copy[i]) blocks.push_back(found->second[i]);
  }
  return blocks;
}

/// Where `dataset`'s bytes lie in the file as this host's floats, one contiguous range: then
/// its boxes are read without HDF5. None for other layouts (chunked, external), byte orders, and
/// an offset that (in a damaged file) runs past the largest file offset: HDF5 refuses those.
std::optional<uint64_t> raw_storage(hid_t dataset) {
  const haddr_t offset = H5Dget_offset(dataset);  // HADDR_UNDEF unless contiguous in the file
  H5Id type(TESSERA_H5(H5Dget_type(dataset)), H5Tclose);
  if (offset == HADDR_UNDEF || H5Tequal(type.get(), H5T_NATIVE_FLOAT) <= 0) return std::nullopt;
  constexpr auto kMaxOffset = static_cast<uint64_t>(std::numeric_limits<off_t>::max());
  if (offset > kMaxOffset - std::min<uint64_t>(H5Dget_storage_size(dataset), kMaxOffset)) {
    return std::nullopt;
  }
  return offset;
}

/// Where each planned dataset's bytes lie (raw_storage), found by rank 0 while it checks the
/// file, so that the other ranks need not open it through HDF5 to read them.
using PlacedStorage = std::vector<std::optional<uint64_t>>;

/// Reads boxes of a checkpoint's datasets on the calling rank alone: straight from the storage
/// of contiguous datasets, past the page cache where the file system allows (DirectReader),
/// through HDF5's independent transfers otherwise (then `file_id` is the file opened on every
/// rank; only then). Each dataset is opened once, when first read. Every element read is
/// added to its dataset's position hash as it lands (on the staging workers, beside the
/// device's next read, rather than in a pass over the buffers afterwards: 0.14 s of a 1.1 s
/// restore at 1 rank).
class BoxReader {
 public:
  BoxReader(hid_t file_id, const std::filesystem::path& file,
            const std::vector<PlannedDataset>& plan, const PlacedStorage& storage)
      : file_id_(file_id),
        sums_(plan.size()),
        direct_(file),
        transfer_(TESSERA_H5(H5Pcreate(H5P_DATASET_XFER)), H5Pclose) {
    TESSERA_H5(H5Pset_dxpl_mpio(transfer_.get(), H5FD_MPIO_INDEPENDENT));
    for (std::size_t i = 0; i < plan.size(); ++i) {
      index_.emplace(plan[i].name, i);
      if (storage[i]) placed_.emplace(plan[i].name, Placed{*storage[i], false});
    }
  }

  /// Reads `box` of `tensor` into `out` (row-major, the box's shape), complete once finish()
  /// returns.
  void read(const PlannedDataset& tensor, const Box& box, float* out) {
    std::atomic<uint64_t>& sum = sums_[index_.at(tensor.name)];
    const auto placed = placed_.find(tensor.name);
    if (placed != placed_.end()) {
      Placed& storage = placed->second;
      if (!direct_.direct() && !storage.advised) {
        // Through the page cache: one deep queue of reads instead of a run's readahead at a
        // time.
        ::posix_fadvise(direct_.descriptor(), static_cast<off_t>(storage.offset),
                        static_cast<off_t>(element_count(tensor.shape) * sizeof(float)),
                        POSIX_FADV_WILLNEED);
        storage.advised = true;
      }
      // Runs start at whole elements of storage that starts on a page: offsets divide by 4.
      const auto landed = [&sum, first = storage.offset](const char* bytes, uint64_t file_offset,
                                                         uint64_t count) {
        sum += position_hash({reinterpret_cast<const float*>(bytes), count / sizeof(float)},
                             (file_offset - first) / sizeof(float));
      };
      for_each_run(storage.offset, tensor.shape, box.shape, box.offset, [&](const ByteRun& run) {
        direct_.read(run, reinterpret_cast<char*>(out), landed);
      });
      return;
    }
    const hid_t dataset = open(tensor.name);
    H5Id space(TESSERA_H5(H5Dget_space(dataset)), H5Sclose);
    const auto elements = static_cast<hsize_t>(element_count(box.shape));
    H5Id memory(TESSERA_H5(H5Screate_simple(1, &elements, nullptr)), H5Sclose);
    select_block(space.get(), box.offset, box.shape);
    TESSERA_H5(H5Dread(dataset, H5T_NATIVE_FLOAT, memory.get(), space.get(), transfer_.get(), out));
    sum += block_position_hash(tensor.shape, box.shape, box.offset, out);
  }

  /// A mark of the reads queued so far, for wait_for().
  uint64_t queued() const { return direct_.queued(); }
  /// Waits until the reads queued by `mark` have landed (or were skipped after a failure,
  /// which finish() reports).
  void wait_for(uint64_t mark) { direct_.wait_for(mark); }
  /// Waits for the queued reads; throws std::runtime_error if one failed.
  void finish() { direct_.finish(); }

  /// The position hash of what was read of each planned dataset (once finish() returned).
  std::vector<uint64_t> sums() const { return std::vector<uint64_t>(sums_.begin(), sums_.end()); }

 private:
  hid_t open(const std::string& name) {
    auto found = open_.find(name);
    if (found != open_.end()) return found->second.get();
    const std::string path = "/" + name;
    H5Id dataset(TESSERA_H5(H5Dopen2(file_id_, path.c_str(), H5P_DEFAULT)), H5Dclose);
    return open_.emplace(name, std::move(dataset)).first->second.get();
  }

  struct Placed {
    uint64_t offset;
    bool advised;  ///< whether the page cache was told to read it ahead
  };

  hid_t file_id_;
  /// Unsigned sums wrap around, so pieces add up to the tensor's hash in any order. (Before
  /// direct_, whose workers add to them until it is destroyed.)
  std::vector<std::atomic<uint64_t>> sums_;
  DirectReader direct_;
  H5Id transfer_;
  std::map<std::string, std::size_t> index_;  ///< in the plan
  std::map<std::string, Placed> placed_;
  std::map<std::string, H5Id> open_;
};

/// The copies of blocks (dp replicas' requests, or a rank's own repeated ones) from the ranks
/// that read them. Each rank posts its receives at once and sends a tensor's blocks as soon as
/// they are complete here, so that the copying overlaps the reads that follow instead of
/// coming after them all (0.11-0.14 s of a 0.8 s restore at 8 ranks). Every copy goes in plan
/// order between each pair of ranks (MPI does not reorder messages of one tag), in pieces whose
/// count fits an int.
class BlockCopies {
 public:
  /// Posts the receives of every copy this rank asked for from another rank.
  BlockCopies(MPI_Comm comm, const std::vector<PlannedDataset>& plan, const RequestsByName& mine)
      : comm_(comm), mine_(mine), rank_(comm_rank(comm)) {
    for (const PlannedDataset& planned : plan) {
      for (const BlockCopy& copy : planned.copies) {
        if (copy.rank != rank_ || copy.owner_rank == rank_) continue;
        const TensorReadRequest& target = request(planned, copy.index);
        for_each_piece(target, [&](int64_t first, int count) {
          MPI_Irecv(target.data + first, count, MPI_FLOAT, copy.owner_rank, kCopyTag, comm_,
                    &transfers_.emplace_back());
        });
      }
    }
  }

  /// Sends the blocks of `planned` that this rank read to the ranks that copy them, and
  /// copies its own repeated ones; once they are complete here (read and regrouped).
  void send(const PlannedDataset& planned) {
    for (const BlockCopy& copy : planned.copies) {
      if (copy.owner_rank != rank_) continue;
      const TensorReadRequest& owned = request(planned, copy.owner_index);
      if (copy.rank == rank_) {
        std::copy_n(owned.data, element_count(owned.local_shape),
                    request(planned, copy.index).data);
        continue;
      }
      for_each_piece(owned, [&](int64_t first, int count) {
        MPI_Isend(owned.data + first, count, MPI_FLOAT, copy.rank, kCopyTag, comm_,
                  &transfers_.emplace_back());
      });
    }
    // Lets the transfers posted so far move (the receiver copies a large message in its MPI
    // calls) while this rank waits for its next reads.
    int done = 0;
    MPI_Testall(static_cast<int>(transfers_.size()), transfers_.data(), &done, MPI_STATUSES_IGNORE);
  }

  /// Waits for every transfer: the copies this rank asked for are filled.
  void finish() {
    MPI_Waitall(static_cast<int>(transfers_.size()), transfers_.data(), MPI_STATUSES_IGNORE);
    transfers_.clear();
  }

 private:
  /// Apart from the row exchanges' messages, which may be in flight between the same ranks.
  static constexpr int kCopyTag = 23;

  const TensorReadRequest& request(const PlannedDataset& planned, int index) const {
    return *mine_.at(planned.name)[static_cast<std::size_t>(index)];  // asked for by this rank
  }

  template <class Each>
  static void for_each_piece(const TensorReadRequest& block, Each each) {
    constexpr int64_t kPiece = int64_t{1} << 30;
    const int64_t count = element_count(block.local_shape);
    for (int64_t first = 0; first < count; first += kPiece) {
      each(first, static_cast<int>(std::min(kPiece, count - first)));
    }
  }

  MPI_Comm comm_;
  const RequestsByName& mine_;
  int rank_;
  std::vector<MPI_Request> transfers_;
};

/// A tensor whose reads are queued on this rank.
struct QueuedTensor {
  const PlannedDataset* tensor;
  uint64_t read_by;                  ///< the reader's mark once its reads were queued
  std::vector<const float*> slices;  ///< the rows dealt to this rank, where it deals rows
  std::vector<float*> blocks;        ///< this rank's blocks of it, where it deals rows
};

/// Queues this rank's reads of `tensor`: the blocks it owns, or where the tensor deals rows,
/// the rows dealt to it, into `rows`. Nothing after a failure (kept in `failure`).
QueuedTensor queue_reads(const PlannedDataset& tensor, const RequestsByName& mine, int rank,
                         float* rows, BoxReader* reader, FirstFailure& failure) {
  QueuedTensor queued{&tensor, 0, {}, {}};
  if (!deals_rows(tensor)) {
    for (const TensorReadRequest* request : blocks_to_read(tensor, mine, rank)) {
      failure.attempt([&] {
        reader->read(tensor, {request->global_offset, request->local_shape}, request->data);
      });
    }
  } else {
    for (const RowSlice& slice : deal_rows(tensor)) {
      if (slice.rank != rank) continue;
      Box box{std::vector<int64_t>(tensor.shape.size(), 0), tensor.shape};
      box.offset[0] = slice.first_row;
      box.shape[0] = slice.rows;
      failure.attempt([&] { reader->read(tensor, box, rows); });
      queued.slices.push_back(rows);
      rows += slice.rows * row_elements(tensor.shape);
    }
    queued.blocks.assign(tensor.blocks.size(), nullptr);
    for (std::size_t j = 0; j < tensor.blocks.size(); ++j) {
      const OwnedBlock& owned = tensor.blocks[j];
      if (owned.rank == rank) {
        queued.blocks[j] = mine.at(tensor.name)[static_cast<std::size_t>(owned.index)]->data;
      }
    }
  }
  if (reader) queued.read_by = reader->queued();
  return queued;
}

/// Every requested block, the file read once in total: each block by its owner, one of the
/// ranks that asked for it, which then sends it to the others (dp replicas ask for the same
/// blocks, and share the reading). Each rank reads the blocks it owns independently: no rank's
/// read depends on another's, so none waits for a slower one at every dataset (collective
/// transfers cost 10x the read at 4 and 8 ranks sharing 2 cores; doc/checkpoints.md, "Costs").
/// Column blocks are read as ranges of whole rows dealt among their owners, then regrouped
/// (RowExchange). A failed read stops this rank's reading but not its part in the exchanges,
/// which the others wait for; the failure is CheckpointDamaged on every rank at the end.
/// Returns the position hash of what this rank read of each planned dataset.
std::vector<uint64_t> read_blocks(MPI_Comm comm, hid_t file_id, const std::filesystem::path& file,
                                  const std::vector<PlannedDataset>& plan,
                                  const PlacedStorage& storage,
                                  const std::vector<TensorReadRequest>& requests) {
  const int rank = comm_rank(comm);
  const RequestsByName mine = requests_by_name(requests);
  FirstFailure failure([&](const std::string& what) { return damaged_message(file, what); });
  std::optional<DealtRows> dealt;  // outlives the reader's queued reads into it
  std::optional<std::string> no_memory;
  try {
    dealt.emplace(plan, rank);
  } catch (const std::bad_alloc&) {
    no_memory = "out of memory on rank " + std::to_string(rank) +
                " for the rows it reads of a checkpoint's column blocks";
  }
  agree(comm, no_memory);
  std::optional<BoxReader> reader;
  failure.attempt([&] { reader.emplace(file_id, file, plan, storage); });
  BlockCopies copies(comm, plan, mine);
  // Completes the first `count` queued tensors, in plan order on every rank: waits for their
  // reads (landed, or skipped after a failure), regroups their rows, sends their copies.
  std::deque<QueuedTensor> queued;
  const auto complete = [&](std::size_t count) {
    for (; count > 0; --count, queued.pop_front()) {
      const QueuedTensor& next = queued.front();
      if (reader) reader->wait_for(next.read_by);
      if (deals_rows(*next.tensor)) scatter_rows(comm, *next.tensor, next.slices, next.blocks);
      copies.send(*next.tensor);
    }
  };
  for (const PlannedDataset& tensor : plan) {
    const bool dealing = deals_rows(tensor);
    queued.push_back(queue_reads(tensor, mine, rank, dealing ? dealt->next() : nullptr,
                                 reader ? &*reader : nullptr, failure));
    // While these rows are read, the other buffer's and every tensor before them are completed.
    if (dealing) complete(queued.size() - 1);
  }
  complete(queued.size());
  copies.finish();
  // Waits for the queued reads even after a failure (they fill the buffers).
  if (reader) failure.run([&] { reader->finish(); });
  agree_damaged(comm, failure.message());
  return reader->sums();
}

/// Collective: the checksums of what the ranks read against `stored` (one per planned
/// dataset). Where the requests tile a tensor, the ranks read each of its elements once from
/// the file, and `sums` are the position hashes of what this rank read; the other tensors are
/// read back whole (verify_datasets). CheckpointDamaged on a mismatch.
void verify_read_blocks(MPI_Comm comm, hid_t file_id, const std::filesystem::path& file,
                        const std::vector<PlannedDataset>& plan, std::vector<uint64_t> sums,
                        const std::vector<uint64_t>& stored, const ChecksumScheme& scheme) {
  std::vector<PlannedDataset> untiled;
  for (const PlannedDataset& planned : plan) {
    if (planned.hashers.empty()) untiled.push_back(planned);
  }
  // Unsigned sums wrap around, so the ranks' partial sums add up to the tensor's hash.
  MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_UINT64_T, MPI_SUM,
                comm);
  verify_datasets(comm, file_id, file, untiled, scheme);
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (!plan[i].hashers.empty() && sums[i] != stored[i]) {  // the same verdict on every rank
      throw CheckpointDamaged("checkpoint " + file.string() + ": dataset /" + plan[i].name +
                              " fails its checksum (data corrupt); use an older checkpoint");
    }
  }
}

/// Rank 0's part of read_checkpoint_metadata: the metadata attribute's text.
RootCheck metadata_attribute(const std::filesystem::path& file) {
  return [file](hid_t file_id, const ChecksumScheme&,
                std::string& shared) -> std::optional<std::string> {
    if (H5Aexists(file_id, kMetadataAttribute) <= 0) {
      return "checkpoint " + file.string() +
             " has no metadata attribute; it is not a tessera checkpoint";
    }
    auto read = read_text_attribute(file_id, kMetadataAttribute, kMaxMetadataBytes);
    if (!read) return "checkpoint " + file.string() + " has a malformed metadata attribute";
    shared = std::move(*read);
    return std::nullopt;
  };
}

}  // namespace

void read_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                     const std::vector<TensorReadRequest>& requests) {
  std::vector<Declaration> declarations;
  agree(comm, declare(
                  requests, [](const TensorReadRequest&) { return true; }, declarations));
  const auto plan = plan_datasets(comm, declarations, /*check_coverage=*/false);
  // Every tensor's shape, type and stored size against the model's before anything is read or
  // allocated by what the file says; rank 0 shares the stored checksums and where each
  // tensor's bytes lie.
  const CheckedFile checked = check_on_root(
      comm, file,
      [&](hid_t file_id, const ChecksumScheme& scheme,
          std::string& shared) -> std::optional<std::string> {
        nlohmann::json checksums = nlohmann::json::array();
        nlohmann::json storage = nlohmann::json::array();
        for (const PlannedDataset& planned : plan) {
          if (auto problem = check_dataset(file_id, file, planned, scheme)) return problem;
          const std::string path = "/" + planned.name;
          H5Id dataset(TESSERA_H5(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT)), H5Dclose);
          checksums.push_back(stored_checksum(dataset.get(), scheme).value());
          const auto placed = raw_storage(dataset.get());
          storage.push_back(placed ? nlohmann::json(*placed) : nlohmann::json());
        }
        shared = nlohmann::json{{"checksums", checksums}, {"storage", storage}}.dump();
        return std::nullopt;
      });
  const auto shared = nlohmann::json::parse(checked.shared);
  const auto stored = shared["checksums"].get<std::vector<uint64_t>>();
  PlacedStorage storage;
  for (const nlohmann::json& placed : shared["storage"]) {
    storage.push_back(placed.is_null() ? std::nullopt
                                       : std::optional<uint64_t>(placed.get<uint64_t>()));
  }
  // The file is opened on every rank through MPI-IO (a round of messages for each object HDF5
  // opens) only where some tensor is read through HDF5: its bytes are not one range of this
  // host's floats, the tensor is read back whole for its checksum, or the format is version 1.
  const bool through_hdf5 =
      !checked.scheme.by_position ||
      std::any_of(storage.begin(), storage.end(), [](const auto& placed) { return !placed; }) ||
      std::any_of(plan.begin(), plan.end(),
                  [](const PlannedDataset& planned) { return planned.hashers.empty(); });
  H5Id file_id = through_hdf5 ? open_checkpoint(comm, file) : H5Id();
  if (!checked.scheme.by_position) {
    // Version 1: FNV-1a needs each dataset whole and in order; verify before reading.
    verify_datasets(comm, file_id.get(), file, plan, checked.scheme);
    read_blocks(comm, file_id.get(), file, plan, storage, requests);
    return;
  }
  std::vector<uint64_t> sums = read_blocks(comm, file_id.get(), file, plan, storage, requests);
  verify_read_blocks(comm, file_id.get(), file, plan, std::move(sums), stored, checked.scheme);
}

nlohmann::json read_checkpoint_metadata(MPI_Comm comm, const std::filesystem::path& file) {
  std::string text;
  try {
    text = check_on_root(comm, file, metadata_attribute(file)).shared;
  } catch (const UsageError& error) {
    // check_on_root's agreed UsageError. A file in a checkpoint directory that cannot give its
    // metadata is damaged: a resume falls back to the checkpoint before it (load_latest).
    throw CheckpointDamaged(error.what());
  }
  auto metadata = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  agree_damaged(comm, metadata.is_discarded()
                          ? std::optional<std::string>("checkpoint " + file.string() +
                                                       ": metadata is not valid JSON")
                          : std::nullopt);
  return metadata;
}

void verify_checkpoint(MPI_Comm comm, const std::filesystem::path& file) {
  const auto [scheme, plan] = check_structure(comm, file);
  read_checkpoint_metadata(comm, file);  // a file without readable metadata cannot be resumed
  H5Id file_id = open_checkpoint(comm, file);
  verify_datasets(comm, file_id.get(), file, plan, scheme);
}

}  // namespace tessera
