// Checkpoints as one parallel HDF5 file of logical tensors.
//
// Every logical tensor ("model/layers/3/attn/q/weight", "optimizer/m/...") is one float32
// dataset with its GLOBAL shape under its name. A rank describes what it holds as a block
// (global shape, local shape, global offset) and writes or reads its hyperslab with collective
// MPI-IO transfers, so a file written at one (tp, pp, dp) layout loads at any other. The file
// appears under its final name only once complete (temp file, fsync, rename), and every
// dataset carries an FNV-1a 64 checksum of its bytes in row-major global order, verified on
// load. doc/checkpoints.md describes the file as h5ls, h5dump and h5py show it.
//
// Every function taking an MPI_Comm is collective over it. Problems with the file or the
// request (missing tensor, shape mismatch, corrupt data, truncated file) throw UsageError on
// every rank with the same message; a failed HDF5 call throws InternalError naming the call,
// file:line and rank.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

/// Version of the file layout, stored as the root attribute "tessera_format_version".
inline constexpr int kCheckpointFormatVersion = 1;

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
/// Cost beyond the write: each dataset is read back once, by one rank (round-robin), to
/// compute its checksum, so the file is read once in total. A non-empty `manifest` (rank 0's
/// copy: the run manifest JSON, io/manifest) becomes the root attribute "manifest". A write
/// that fails (a full file system) is one UsageError on every rank; the temporary file is
/// removed but stays open in HDF5 (checkpoint_file_left_open), and the process should end.
void write_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                      const std::vector<TensorBlock>& blocks, const nlohmann::json& metadata,
                      const std::string& manifest = {});

/// Reads each request's block from `file`, after checking the format version, that every
/// requested tensor exists as float32 with exactly the expected global shape, and the checksum
/// of every requested tensor (each read once in total, datasets split round-robin over ranks).
void read_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                     const std::vector<TensorReadRequest>& requests);

/// The metadata JSON given to write_checkpoint.
nlohmann::json read_checkpoint_metadata(MPI_Comm comm, const std::filesystem::path& file);

/// Checks the format version and the checksum of every dataset in `file`; throws UsageError
/// naming the file and the first bad dataset.
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
  /// The newest checkpoint that passes verify_checkpoint, or none. Each one that fails is
  /// reported through `warn` (on every rank, same message) before falling back to the previous.
  std::optional<Entry> latest_valid(const Warning& warn = {}) const;
  std::filesystem::path path_for(int64_t step) const;
  const std::filesystem::path& directory() const { return directory_; }

 private:
  MPI_Comm comm_;
  std::filesystem::path directory_;
  int keep_last_;
};

}  // namespace tessera
