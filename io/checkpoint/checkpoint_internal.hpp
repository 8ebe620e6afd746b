// Shared pieces of the checkpoint implementation: the HDF5 check macro, RAII handles, rank
// agreement and the dataset plan. Not part of the public API.
#pragma once

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint/checkpoint.hpp"

namespace tessera::checkpoint_detail {

/// Throws InternalError naming the HDF5 call, file:line, the MPI rank and HDF5's innermost
/// error message.
[[noreturn]] void throw_h5_failure(const char* statement, const char* file, int line);

template <typename T>
T h5_checked(T result, const char* statement, const char* file, int line) {
  if (result < 0) throw_h5_failure(statement, file, line);
  return result;
}

}  // namespace tessera::checkpoint_detail

/// Checks the return code of one HDF5 call (negative = failure) and yields its value.
#define TESSERA_H5(call) ::tessera::checkpoint_detail::h5_checked((call), #call, __FILE__, __LINE__)

namespace tessera::checkpoint_detail {

/// Owns one HDF5 identifier and closes it with the matching H5?close.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer close) : id_(id), close_(close) {}
  H5Id(H5Id&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  H5Id& operator=(H5Id&& other) noexcept;
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() { reset(); }
  hid_t get() const { return id_; }
  /// Gives up ownership (for a close whose result is checked).
  hid_t release() {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }
  void reset();

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

/// Turns off HDF5's printing of error stacks (errors are reported as exceptions instead).
void silence_hdf5();

int comm_rank(MPI_Comm comm);
int comm_size(MPI_Comm comm);
void broadcast_string(MPI_Comm comm, std::string& text, int root);

/// Collective: if any rank passes an error, every rank throws UsageError with the message of
/// the lowest such rank; otherwise returns on every rank.
void agree(MPI_Comm comm, const std::optional<std::string>& local_error);
/// The same, throwing CheckpointDamaged: for data that fails its checksum or cannot be read.
void agree_damaged(MPI_Comm comm, const std::optional<std::string>& local_error);

/// The first failure among one rank's transfers, as a message: a rank whose transfer failed
/// still takes its part in the exchanges that follow (the others wait for it), and the failure
/// is agreed on at the end.
class FirstFailure {
 public:
  /// `describe` turns an exception's text into the message.
  explicit FirstFailure(std::function<std::string(const std::string&)> describe)
      : describe_(std::move(describe)) {}

  /// Runs `step` unless an earlier one failed; keeps its failure, if any.
  void attempt(const std::function<void()>& step) {
    if (!message_) run(step);
  }
  /// Runs `step` even after a failure (waiting for queued transfers); keeps the first failure.
  void run(const std::function<void()>& step) {
    try {
      step();
    } catch (const std::exception& error) {
      if (!message_) message_ = describe_(error.what());
    }
  }
  const std::optional<std::string>& message() const { return message_; }

 private:
  std::function<std::string(const std::string&)> describe_;
  std::optional<std::string> message_;
};

/// How a file's datasets carry their checksums, by format version.
struct ChecksumScheme {
  int version = kCheckpointFormatVersion;
  const char* attribute = "position_hash64";
  /// Version 2 and later: position_hash (core/checksum.hpp), which blocks compute apart, so it
  /// is taken from the buffers as they are written and read. Version 1: FNV-1a 64 of the bytes
  /// in row-major order, which only a pass over the whole dataset in order can compute.
  bool by_position = true;
};

/// The scheme of a format version this build reads, or none.
std::optional<ChecksumScheme> checksum_scheme(int version);

/// A block that rank `rank` declared (its `index`-th of the tensor) with the same place as an
/// earlier one, `owner_index`-th of `owner_rank`: a dp replica's copy.
struct BlockCopy {
  int rank = 0;
  int index = 0;
  int owner_rank = 0;
  int owner_index = 0;
};

/// A block's place in its tensor.
struct Box {
  std::vector<int64_t> offset;
  std::vector<int64_t> shape;
};

/// One distinct block of a tensor and the rank that owns it: its writer, or the one of its
/// readers that reads it from the file (`index`: among that rank's blocks of the tensor).
struct OwnedBlock {
  int rank = 0;
  int index = 0;
  Box box;
};

/// One dataset of the union over ranks, in name order (the same on every rank).
struct PlannedDataset {
  std::string name;
  std::vector<int64_t> shape;
  /// For reading: (rank, index among that rank's blocks of this tensor) of blocks that cover
  /// the tensor exactly once, copies of a block (dp replicas) counted at its owner; then
  /// the ranks' sums of those blocks add up to the tensor's position hash. Empty when the
  /// distinct blocks do not tile the tensor (a partial read): its hash needs a pass over it.
  std::vector<std::pair<int, int>> hashers;
  /// For reading: blocks that only their owner reads from the file and sends to the copy's rank
  /// (the owners spread over the ranks that ask for the blocks: ReadLoads).
  std::vector<BlockCopy> copies;
  /// Every distinct block with its owner, in the order the ranks declared them.
  std::vector<OwnedBlock> blocks;
};

/// What a rank declares about one tensor: its name, global shape and the elements it writes.
struct Declaration {
  std::string name;
  std::vector<int64_t> shape;
  int64_t written = 0;
  std::vector<Box> boxes;  ///< the places of the blocks it writes or reads, in order
};

/// Collective: the union of every rank's declarations. Throws UsageError on every rank if two
/// ranks disagree on a shape, or (check_coverage) if a tensor's writers do not write exactly
/// its element count.
std::vector<PlannedDataset> plan_datasets(MPI_Comm comm, const std::vector<Declaration>& mine,
                                          bool check_coverage);

/// Checks one block against its global shape; returns the problem, if any.
std::optional<std::string> check_block(const std::string& name,
                                       const std::vector<int64_t>& global_shape,
                                       const std::vector<int64_t>& local_shape,
                                       const std::vector<int64_t>& global_offset, const void* data);

std::string shape_string(const std::vector<int64_t>& shape);
int64_t element_count(const std::vector<int64_t>& shape);

/// Checks every block (a TensorBlock to write or a TensorReadRequest to read) and collects one
/// declaration per tensor name into `declarations`; a block for which `counts(block)` holds adds
/// to its tensor's block and element counts. Returns the first problem, if any.
template <class Block, class Counts>
std::optional<std::string> declare(const std::vector<Block>& blocks, Counts counts,
                                   std::vector<Declaration>& declarations) {
  std::map<std::string, Declaration> by_name;
  for (const Block& block : blocks) {
    if (auto problem = check_block(block.name, block.global_shape, block.local_shape,
                                   block.global_offset, block.data)) {
      return problem;
    }
    Declaration& declaration = by_name[block.name];
    if (declaration.name.empty()) declaration = {block.name, block.global_shape, 0, {}};
    if (declaration.shape != block.global_shape) {
      return "checkpoint tensor '" + block.name + "' has blocks of different global shapes " +
             shape_string(declaration.shape) + " and " + shape_string(block.global_shape);
    }
    if (counts(block)) {
      declaration.written += element_count(block.local_shape);
      declaration.boxes.push_back({block.global_offset, block.local_shape});
    }
  }
  for (auto& [name, declaration] : by_name) declarations.push_back(std::move(declaration));
  return std::nullopt;
}

/// The text of the fixed-length string attribute `name` of `object` (which must exist), up to
/// its first NUL; nullopt when it is not such a string, is empty or is over `max_bytes`.
std::optional<std::string> read_text_attribute(hid_t object, const char* name,
                                               std::size_t max_bytes);

/// Collective: opens `file` read-only through MPI-IO; a file that cannot be opened is one
/// UsageError on every rank. Callers check the file first with check_on_root (that it is a
/// regular file, its format version, its structure).
H5Id open_checkpoint(MPI_Comm comm, const std::filesystem::path& file);

/// The checksum of the dataset's float32 elements by `scheme`, read in row-major global order
/// independently by the calling rank in pieces of bounded size (whatever the shape: a row of a
/// forged [1, 2^33] is read in pieces too).
uint64_t hash_dataset(hid_t dataset, const std::vector<int64_t>& shape,
                      const ChecksumScheme& scheme);

/// "checkpoint FILE is damaged (WHAT); use an older checkpoint or rewrite it".
std::string damaged_message(const std::filesystem::path& file, const std::string& what);

/// Opens `file` read-only with HDF5's serial driver on the calling rank alone (nothing
/// collective); UsageError when it cannot be read as HDF5.
H5Id open_on_this_rank(const std::filesystem::path& file);

/// A check of a file's structure that rank 0 runs alone: returns the problem, or nullopt and
/// (optionally) text for every rank in `shared`.
using RootCheck = std::function<std::optional<std::string>(
    hid_t file_id, const ChecksumScheme& scheme, std::string& shared)>;

/// What check_on_root found, the same on every rank.
struct CheckedFile {
  ChecksumScheme scheme;  ///< of the file's format version
  std::string shared;     ///< the check's text
};

/// Collective: every rank checks that `file` is a regular file (a FIFO or a directory is never
/// opened); then rank 0 alone opens it with HDF5's serial driver, checks that this build reads
/// its format version and runs `check`; any failure there (a problem, an HDF5 error on a
/// corrupt header, an allocation that a forged size makes fail) is one UsageError on every
/// rank. Nothing collective happens while rank 0 reads, so no rank can be left waiting.
CheckedFile check_on_root(MPI_Comm comm, const std::filesystem::path& file, const RootCheck& check);

/// Collective: the structure of every dataset in `file` (float32, a bounded shape, all its
/// bytes stored, a checksum attribute), read by rank 0 alone; nothing of the data is read.
/// Returns the datasets in name order, without hashers; a problem is one UsageError.
std::pair<ChecksumScheme, std::vector<PlannedDataset>> check_structure(
    MPI_Comm comm, const std::filesystem::path& file);

/// Whether `dataset` (at `path`, of `shape`, already checked) stores all its bytes and a
/// checksum: an unallocated or truncated dataset is refused before anything reads it.
std::optional<std::string> stored_data_problem(hid_t dataset, const std::string& path,
                                               const std::vector<int64_t>& shape,
                                               const std::filesystem::path& file,
                                               const ChecksumScheme& scheme);

/// The stored checksum of `dataset`, or none if the attribute is missing or malformed.
std::optional<uint64_t> stored_checksum(hid_t dataset, const ChecksumScheme& scheme);

/// The position hash of a block, from its buffer (row-major local shape).
uint64_t block_position_hash(const std::vector<int64_t>& global_shape,
                             const std::vector<int64_t>& local_shape,
                             const std::vector<int64_t>& global_offset, const float* data);

/// Names of the root attributes.
inline constexpr const char* kVersionAttribute = "tessera_format_version";
inline constexpr const char* kMetadataAttribute = "metadata";
inline constexpr const char* kManifestAttribute = "manifest";

/// Collective: every dataset's checksum against its attribute, each read back whole, dataset i
/// by rank i % size; throws CheckpointDamaged on every rank naming the file and the first bad
/// dataset (a read that fails on one rank included).
void verify_datasets(MPI_Comm comm, hid_t file_id, const std::filesystem::path& file,
                     const std::vector<PlannedDataset>& datasets, const ChecksumScheme& scheme);

/// Paths (without the leading '/') of every dataset in the file, in name order.
std::vector<std::string> dataset_names(hid_t file_id);

/// Selects the block (offset, count) in `space`, or nothing when `count` is empty.
void select_block(hid_t space, const std::vector<int64_t>& offset,
                  const std::vector<int64_t>& count);

}  // namespace tessera::checkpoint_detail

namespace tessera::checkpoint_detail {

/// fsync `temp`, rename it to `file`, fsync the directory; returns the problem, if any.
std::optional<std::string> publish_file(const std::filesystem::path& temp,
                                        const std::filesystem::path& file);

}  // namespace tessera::checkpoint_detail
