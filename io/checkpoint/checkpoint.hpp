// Checkpoints as one parallel HDF5 file of logical tensors.
//
// Every logical tensor ("model/layers/3/attn/q/weight", "optimizer/m/...") is one float32
// dataset with its GLOBAL shape under its name. A rank describes what it holds as a block
// (global shape, local shape, global offset) and writes or reads its hyperslab with collective
// MPI-IO transfers, so a file written at one (tp, pp, dp) layout loads at any other. The file
// appears under its final name only once complete (temp file, fsync, rename), and every
// dataset carries a checksum of its elements keyed by their global positions (position_hash,
// core/checksum.hpp): each rank hashes the blocks it writes or reads from its own buffers, so
// neither a save nor a restore reads the file more than once. doc/checkpoints.md describes the
// file as h5ls, h5dump and h5py show it.
//
// Every function taking an MPI_Comm is collective over it. Problems with the file or the
// request (missing tensor, shape mismatch, corrupt data, truncated file) throw UsageError on
// every rank with the same message (CheckpointDamaged when the data fails its checksum); a
// failed HDF5 call throws InternalError naming the call, file:line and rank.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace tessera {

/// Version of the file layout, stored as the root attribute "tessera_format_version". Version 2
/// stores position_hash checksums ("position_hash64"); version 1 files (FNV-1a 64 of the bytes,
/// "fnv1a64") are still read, and verified by reading each dataset back.
inline constexpr int kCheckpointFormatVersion = 2;
inline constexpr int kOldestReadableCheckpointFormat = 1;

/// A checkpoint whose data fails its checksum or cannot be read: the file is damaged, as
/// opposed to a request it does not match (a UsageError). An older checkpoint may be intact.
class CheckpointDamaged : public UsageError {
 public:
  using UsageError::UsageError;
};

/// The block of one logical tensor that a rank holds, for writing.
struct TensorBlock {
  std::string name;  ///< dataset path, e.g. "model/layers/3/attn/q/weight"
  std::vector<int64_t> global_shape;
  std::vector<int64_t> local_shape;
  std::vector<int64_t> global_offset;  ///< first global index of the block, per dimension
  const float* data = nullptr;         ///< host, row-major local_shape
  /// False for copies another rank also writes (tp-replicated tensors on tp rank != 0, dp
  /// replicas other than dp rank 0, the tied embedding on the last stage). The writer blocks of
  /// a tensor must hold exactly its element count in all (checked; overlap plus an equal gap is
  /// not detected); non-writers only declare the tensor. A rank may pass several blocks of one
  /// tensor.
  bool writer = true;
};

/// The block of one logical tensor that a rank wants, for reading.
struct TensorReadRequest {
  std::string name;
  std::vector<int64_t> global_shape;  ///< must equal the dataset's shape in the file
  std::vector<int64_t> local_shape;
  std::vector<int64_t> global_offset;
  float* data = nullptr;  ///< host, row-major local_shape, filled by read_checkpoint
};

/// Writes `blocks` and `metadata` (rank 0's copy: step, config, layout, RNG state, data
/// position) to `file` atomically: a crash leaves the previous file or none, never a partial
/// one. Ranks may declare different tensors (pipeline stages); the file holds their union.
/// Checksums come from the writers' buffers (one pass over the memory each rank writes); the
/// file is not read back. A non-empty `manifest` (rank 0's
/// copy: the run manifest JSON, io/manifest) becomes the root attribute "manifest". A write
/// that fails (a full file system) is one UsageError on every rank; the temporary file is
/// removed but stays open in HDF5 (checkpoint_file_left_open), and the process should end.
void write_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                      const std::vector<TensorBlock>& blocks, const nlohmann::json& metadata,
                      const std::string& manifest = {});

/// Reads each request's block from `file`, after checking the format version and that every
/// requested tensor exists as float32 with exactly the expected global shape (UsageError), then
/// verifies the checksum of every requested tensor (CheckpointDamaged). When the requests cover
/// a tensor (copies of a block, as dp replicas read, count once) the ranks hash what they read
/// and the file is read once; a tensor read only in part, or any tensor of a version 1 file, is
/// read back whole by one rank to be verified.
void read_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                     const std::vector<TensorReadRequest>& requests);

/// The metadata JSON given to write_checkpoint; CheckpointDamaged on every rank when the file
/// cannot give it (no such attribute, or not JSON).
nlohmann::json read_checkpoint_metadata(MPI_Comm comm, const std::filesystem::path& file);

/// Checks the format version, that the metadata is JSON, and the checksum of every dataset in
/// `file`, reading it once (datasets spread over the ranks); throws UsageError naming the file
/// and the first bad dataset (CheckpointDamaged when its data or metadata fails).
void verify_checkpoint(MPI_Comm comm, const std::filesystem::path& file);

/// The run manifest attribute of `file` (JSON text). Serial, like describe_checkpoint.
/// UsageError when the file is not a readable checkpoint or has no manifest.
std::string read_checkpoint_manifest(const std::filesystem::path& file);

/// A human-readable listing (datasets, shapes, dtypes, attributes) for `tessera inspect`.
/// Serial: opens the file with the default driver on the calling process only.
std::string describe_checkpoint(const std::filesystem::path& file);

/// Whether HDF5 still holds a file of this process open: after a write that failed for space,
/// HDF5 (1.10) cannot close the file, and its cleanup at MPI_Finalize would crash on it.
bool checkpoint_file_left_open();

/// Whether this process can do in `directory` what a save does: create it (and its parents),
/// write a file, fsync it, rename it into place and fsync the directory. The probe file is
/// removed again. Returns the step that failed with the system's reason, or nullopt.
std::optional<std::string> probe_writable_directory(const std::filesystem::path& directory);

/// A directory of checkpoints "step_000000123.h5" with a `latest` text file naming the newest
/// complete one, and keep-last-N retention. All members are collective over the communicator.
class CheckpointDirectory {
 public:
  struct Entry {
    int64_t step;
    std::filesystem::path path;
  };
  using Warning = std::function<void(const std::string&)>;

  /// keep_last >= 1: how many complete checkpoints save() leaves behind.
  CheckpointDirectory(MPI_Comm comm, std::filesystem::path directory, int keep_last);

  /// Writes the checkpoint of `step`, then points `latest` at it (temp file + rename), then
  /// deletes all but the newest keep_last checkpoints. Returns the new file's path.
  /// `manifest` as in write_checkpoint.
  std::filesystem::path save(int64_t step, const std::vector<TensorBlock>& blocks,
                             const nlohmann::json& metadata, const std::string& manifest = {});
  /// Complete checkpoints in the directory, oldest first (temp files are not listed).
  std::vector<Entry> list() const;
  /// Loads the newest sound checkpoint with `load` (which reads it, e.g. with read_checkpoint,
  /// whose checksums verify what it reads): newest first, `latest`'s target before the others.
  /// A candidate whose structure is damaged (checked first, without reading its data) or whose
  /// data `load` finds damaged (CheckpointDamaged) is reported through `warn` (on every rank,
  /// same message) and the previous one is tried; any other error of `load` (the file does not
  /// match the model) ends the search. Returns the entry loaded, or none.
  std::optional<Entry> load_latest(const std::function<void(const Entry&)>& load,
                                   const Warning& warn = {}) const;
  /// The newest checkpoint that passes verify_checkpoint, or none (load_latest with a full
  /// verification as the load).
  std::optional<Entry> latest_valid(const Warning& warn = {}) const;
  std::filesystem::path path_for(int64_t step) const;
  const std::filesystem::path& directory() const { return directory_; }

 private:
  MPI_Comm comm_;
  std::filesystem::path directory_;
  int keep_last_;
};

}  // namespace tessera
