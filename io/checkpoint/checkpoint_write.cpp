// write_checkpoint: plan the union of datasets, create them in a temp file, write each rank's
// blocks into their storage while hashing the buffers for the checksum attributes, then publish
// the file with fsync + rename.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
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

/// Rank 0 picks a temp name next to `file` (same directory, so rename is atomic).
std::filesystem::path temp_path(MPI_Comm comm, const std::filesystem::path& file) {
  std::string suffix;
  if (comm_rank(comm) == 0) {
    const auto now =
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    suffix = ".tmp-" + std::to_string(getpid()) + "-" + to_hex16(now).substr(8);
  }
  broadcast_string(comm, suffix, 0);
  return file.string() + suffix;
}

/// What a failed write says: the file system's state when it is (nearly) full, since HDF5 only
/// says that it could not write.
std::string write_failure(const std::filesystem::path& file, const std::string& what) {
  const std::filesystem::path directory =
      file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  std::error_code error;
  const std::filesystem::space_info space = std::filesystem::space(directory, error);
  constexpr std::uintmax_t kNearlyFull = std::uintmax_t{16} << 20;
  if (!error && space.available < kNearlyFull) {
    return "no space left on " + directory.string() + " (" +
           std::to_string(space.available / 1024) +
           " KiB free: the file system filled up while the checkpoint was written); the "
           "checkpoints already there are intact. Free space there, or point checkpoint.dir "
           "elsewhere, then resume";
  }
  return "writing checkpoint " + file.string() + " failed (" + what +
         "); the checkpoints already there are intact";
}

/// Runs `step` on every rank, then agrees: when it failed on any rank, every rank throws the
/// same UsageError. A write the file system refuses fails only on the rank that made it;
/// without the agreement that rank would leave the others waiting in the next collective.
template <class Step>
void agreed(MPI_Comm comm, const std::filesystem::path& file, Step&& step) {
  std::optional<std::string> failure;
  try {
    step();
  } catch (const std::exception& error) {
    failure = write_failure(file, error.what());
  }
  agree(comm, failure);
}

/// A fixed-length string attribute of the root group.
void write_text_attribute(hid_t file_id, const char* name, const std::string& value) {
  H5Id scalar(TESSERA_H5(H5Screate(H5S_SCALAR)), H5Sclose);
  H5Id text_type(TESSERA_H5(H5Tcopy(H5T_C_S1)), H5Tclose);
  TESSERA_H5(H5Tset_size(text_type.get(), std::max<std::size_t>(1, value.size())));
  H5Id text(TESSERA_H5(
                H5Acreate2(file_id, name, text_type.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT)),
            H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  TESSERA_H5(H5Awrite(text.get(), text_type.get(), padded.data()));
}

void write_root_attributes(hid_t file_id, const std::string& metadata,
                           const std::string& manifest) {
  H5Id scalar(TESSERA_H5(H5Screate(H5S_SCALAR)), H5Sclose);
  H5Id version(TESSERA_H5(H5Acreate2(file_id, kVersionAttribute, H5T_STD_I32LE, scalar.get(),
                                     H5P_DEFAULT, H5P_DEFAULT)),
               H5Aclose);
  const int value = kCheckpointFormatVersion;
  TESSERA_H5(H5Awrite(version.get(), H5T_NATIVE_INT, &value));
  write_text_attribute(file_id, kMetadataAttribute, metadata);
  if (!manifest.empty()) write_text_attribute(file_id, kManifestAttribute, manifest);
}

/// HDF5's part of the file: its structure and attributes, which rank 0 alone writes through the
/// serial driver while every rank writes its tensors' bytes past HDF5 (write_raw_blocks). Made
/// collectively, through MPI-IO, every dataset's creation was a round of messages among all
/// ranks: 0.09 s of a 0.65 s save at 8 ranks sharing 2 cores (bench_checkpoint).
class FileStructure {
 public:
  /// Creates `temp` with the root attributes and every planned dataset, its storage one
  /// contiguous range placed now, page-aligned (so that its bytes can be written direct).
  FileStructure(const std::filesystem::path& temp, const std::vector<PlannedDataset>& plan,
                const std::string& metadata, const std::string& manifest) {
    H5Id fapl(TESSERA_H5(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose);
    // 1.8 format or newer: attributes over 64 KiB (a long config) go to dense storage.
    TESSERA_H5(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST));
    TESSERA_H5(H5Pset_alignment(fapl.get(), kDirectAlignment, kDirectAlignment));
    file_ =
        H5Id(TESSERA_H5(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get())), H5Fclose);
    write_root_attributes(file_.get(), metadata, manifest);
    H5Id link_props(TESSERA_H5(H5Pcreate(H5P_LINK_CREATE)), H5Pclose);
    TESSERA_H5(H5Pset_create_intermediate_group(link_props.get(), 1));
    H5Id create_props(TESSERA_H5(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
    TESSERA_H5(H5Pset_layout(create_props.get(), H5D_CONTIGUOUS));
    TESSERA_H5(H5Pset_alloc_time(create_props.get(), H5D_ALLOC_TIME_EARLY));
    TESSERA_H5(H5Pset_fill_time(create_props.get(), H5D_FILL_TIME_NEVER));
    for (const PlannedDataset& planned : plan) {
      std::vector<hsize_t> dims(planned.shape.begin(), planned.shape.end());
      H5Id space(TESSERA_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)),
                 H5Sclose);
      const std::string path = "/" + planned.name;
      datasets_.emplace_back(
          TESSERA_H5(H5Dcreate2(file_.get(), path.c_str(), H5T_IEEE_F32LE, space.get(),
                                link_props.get(), create_props.get(), H5P_DEFAULT)),
          H5Dclose);
      const haddr_t offset = H5Dget_offset(datasets_.back().get());
      if (offset == HADDR_UNDEF && element_count(planned.shape) > 0) {
        throw std::runtime_error("HDF5 placed no storage for " + path);
      }
      storage_.push_back(offset == HADDR_UNDEF ? 0 : offset);
    }
  }

  /// Where each planned dataset's bytes start in the file.
  const std::vector<uint64_t>& storage() const { return storage_; }

  /// Writes each dataset's checksum attribute, then closes the file.
  void finish(const std::vector<uint64_t>& hashes) {
    const ChecksumScheme scheme;
    H5Id scalar(TESSERA_H5(H5Screate(H5S_SCALAR)), H5Sclose);
    for (std::size_t i = 0; i < datasets_.size(); ++i) {
      H5Id attribute(TESSERA_H5(H5Acreate2(datasets_[i].get(), scheme.attribute, H5T_STD_U64LE,
                                           scalar.get(), H5P_DEFAULT, H5P_DEFAULT)),
                     H5Aclose);
      TESSERA_H5(H5Awrite(attribute.get(), H5T_NATIVE_UINT64, &hashes[i]));
    }
    datasets_.clear();
    TESSERA_H5(H5Fclose(file_.release()));
  }

  /// Leaves the file open in HDF5 after a failed write, whose close would fail again (the
  /// caller ends the process without MPI_Finalize: checkpoint_file_left_open).
  void abandon() { file_.release(); }

 private:
  H5Id file_;
  std::vector<H5Id> datasets_;
  std::vector<uint64_t> storage_;
};

/// This rank's writer blocks of each tensor, in the order it declared them (OwnedBlock::index).
using WriterBlocks = std::map<std::string, std::vector<const TensorBlock*>>;

WriterBlocks writer_blocks(const std::vector<TensorBlock>& blocks) {
  WriterBlocks mine;
  for (const TensorBlock& block : blocks) {
    if (block.writer) mine[block.name].push_back(&block);
  }
  return mine;
}

/// Writes each rank's part of the tensors straight into the file's allocated storage,
/// independently (each element has one writer, so no rank waits for another at every write;
/// collective transfers cost 2.5x the write at 8 ranks sharing 2 cores: doc/checkpoints.md,
/// "Costs"), past the page cache where the file system allows (DirectWriter). Column blocks
/// are first regrouped into whole rows (RowExchange). A failed write stops this rank's writing
/// but not its part in the exchanges, which the others wait for; the failure is agreed at the
/// end.
void write_raw_blocks(MPI_Comm comm, const std::filesystem::path& file,
                      const std::filesystem::path& temp, const std::vector<PlannedDataset>& plan,
                      const std::vector<uint64_t>& storage, const WriterBlocks& mine) {
  const int rank = comm_rank(comm);
  FirstFailure failure([&](const std::string& what) { return write_failure(file, what); });
  std::optional<DealtRows> dealt;  // outlives the writer's queued writes of it
  std::optional<DirectWriter> writer;
  failure.attempt([&] {
    writer.emplace(temp);
    dealt.emplace(plan, rank);
  });
  agree(comm, failure.message());
  // What the writer had queued once each dealt-rows buffer's last rows were queued: the
  // buffer is refilled only after those writes (even after a failure: they read it).
  std::map<const float*, uint64_t> written_by;
  const auto write = [&](const ByteRun& run, const void* data) {
    failure.attempt([&] { writer->write(run, static_cast<const char*>(data)); });
  };
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const PlannedDataset& tensor = plan[i];
    const auto found = mine.find(tensor.name);
    if (element_count(tensor.shape) == 0) continue;
    if (!deals_rows(tensor)) {
      if (found == mine.end()) continue;
      for (const TensorBlock* block : found->second) {
        for_each_run(storage[i], block->global_shape, block->local_shape, block->global_offset,
                     [&](const ByteRun& run) { write(run, block->data); });
      }
      continue;
    }
    std::vector<const float*> sources(tensor.blocks.size(), nullptr);
    for (std::size_t j = 0; j < tensor.blocks.size(); ++j) {
      const OwnedBlock& owned = tensor.blocks[j];
      if (owned.rank == rank)
        sources[j] = found->second.at(static_cast<std::size_t>(owned.index))->data;
    }
    const auto row_bytes = static_cast<uint64_t>(row_elements(tensor.shape)) * sizeof(float);
    float* rows = dealt->next();
    std::vector<float*> targets;
    std::vector<ByteRun> runs;
    uint64_t used = 0;  // bytes of rows
    for (const RowSlice& slice : deal_rows(tensor)) {
      if (slice.rank != rank) continue;
      targets.push_back(rows + used / sizeof(float));
      runs.push_back({storage[i] + static_cast<uint64_t>(slice.first_row) * row_bytes, used,
                      static_cast<uint64_t>(slice.rows) * row_bytes});
      used += runs.back().bytes;
    }
    writer->wait_for(written_by[rows]);  // the rows it held before are written: refill
    gather_rows(comm, tensor, sources, targets);
    for (const ByteRun& run : runs) write(run, rows);
    written_by[rows] = writer->queued();
  }
  // Waits for the queued writes even after a failure: they read the buffers.
  failure.run([&] { writer->finish(); });
  agree(comm, failure.message());
}

/// This rank's part of each dataset's position hash: the sum over its writer blocks (each
/// element has one writer). Nothing is read back: the buffers are hashed as they are written.
std::vector<uint64_t> own_hashes(const std::vector<PlannedDataset>& plan,
                                 const std::vector<TensorBlock>& blocks) {
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < plan.size(); ++i) index_of[plan[i].name] = i;
  std::vector<uint64_t> hashes(plan.size(), 0);
  for (const TensorBlock& block : blocks) {
    if (!block.writer) continue;
    hashes[index_of.at(block.name)] +=
        block_position_hash(block.global_shape, block.local_shape, block.global_offset, block.data);
  }
  return hashes;
}

std::string errno_text(const std::string& what, const std::filesystem::path& path) {
  return what + " " + path.string() + " failed: " + std::strerror(errno);
}

/// fsync of a file or directory by path; returns the problem, if any.
std::optional<std::string> sync_path(const std::filesystem::path& path, int flags) {
  const int fd = open(path.c_str(), flags);
  if (fd < 0) return errno_text("open for fsync of", path);
  const bool ok = fsync(fd) == 0;
  std::optional<std::string> problem;
  if (!ok) problem = errno_text("fsync of", path);
  close(fd);
  return problem;
}

/// Bytes the file will take: the tensors, the metadata text, and HDF5's headers (a generous
/// allowance per dataset and for the file).
std::uintmax_t expected_file_bytes(const std::vector<PlannedDataset>& plan,
                                   std::size_t text_bytes) {
  std::uintmax_t bytes = (std::uintmax_t{1} << 16) + text_bytes;
  for (const PlannedDataset& planned : plan) {
    bytes += static_cast<std::uintmax_t>(element_count(planned.shape)) * sizeof(float) + 4096;
  }
  return bytes;
}

/// Whether `bytes` fit at `temp` now, asked before anything is written: posix_fallocate
/// reserves the space (quotas included) and the reservation is given back at once, so a save
/// that cannot fit is refused before it writes gigabytes. (Space that another writer takes
/// meanwhile makes a write fail, which `agreed` turns into the same kind of message.) A file
/// system without fallocate is not asked.
std::optional<std::string> space_problem(const std::filesystem::path& temp, std::uintmax_t bytes) {
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return std::nullopt;  // H5Fcreate says why, below
  const int error = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  close(fd);
  unlink(temp.c_str());
  if (error != ENOSPC && error != EDQUOT) return std::nullopt;
  return "no space left on " + temp.parent_path().string() + " (" + std::strerror(error) +
         "): the checkpoint needs " + std::to_string(bytes / 1000000 + 1) +
         " MB; the checkpoints already there are intact. Free space there, or point "
         "checkpoint.dir elsewhere, then resume";
}

}  // namespace

namespace checkpoint_detail {

std::optional<std::string> publish_file(const std::filesystem::path& temp,
                                        const std::filesystem::path& file) {
  if (auto problem = sync_path(temp, O_RDONLY)) return problem;
  if (std::rename(temp.c_str(), file.c_str()) != 0) return errno_text("rename to", file);
  const auto directory =
      file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  return sync_path(directory, O_RDONLY | O_DIRECTORY);
}

}  // namespace checkpoint_detail

void write_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                      const std::vector<TensorBlock>& blocks, const nlohmann::json& metadata,
                      const std::string& manifest) {
  silence_hdf5();
  std::vector<Declaration> declarations;
  agree(comm, declare(
                  blocks, [](const TensorBlock& block) { return block.writer; }, declarations));
  const auto plan = plan_datasets(comm, declarations, /*check_coverage=*/true);
  std::string metadata_text = metadata.dump();
  broadcast_string(comm, metadata_text, 0);
  std::string manifest_text = manifest;
  broadcast_string(comm, manifest_text, 0);
  const auto temp = temp_path(comm, file);
  const bool root = comm_rank(comm) == 0;  // checks the space, writes HDF5's part, publishes
  std::optional<std::string> no_space;
  if (root) {
    no_space =
        space_problem(temp, expected_file_bytes(plan, metadata_text.size() + manifest_text.size()));
  }
  agree(comm, no_space);
  std::optional<FileStructure> structure;
  try {
    // Every step that touches the file is agreed on, so that a failure anywhere (a full file
    // system) is one error on every rank.
    std::vector<uint64_t> storage(plan.size());
    agreed(comm, file, [&] {
      if (!root) return;
      structure.emplace(temp, plan, metadata_text, manifest_text);
      storage = structure->storage();
    });
    MPI_Bcast(storage.data(), static_cast<int>(storage.size()), MPI_UINT64_T, 0, comm);
    // The hashing (memory and CPU) runs beside the writes (the device); both read the buffers
    // only. The tensors' bytes go into the storage HDF5 placed, which its own writes (the
    // metadata, at the close) never touch.
    auto hashing = std::async(std::launch::async, [&] { return own_hashes(plan, blocks); });
    write_raw_blocks(comm, file, temp, plan, storage, writer_blocks(blocks));
    // Unsigned sums wrap around, so the ranks' partial sums add up to each tensor's hash.
    std::vector<uint64_t> hashes = hashing.get();
    MPI_Reduce(root ? MPI_IN_PLACE : hashes.data(), hashes.data(), static_cast<int>(hashes.size()),
               MPI_UINT64_T, MPI_SUM, 0, comm);
    agreed(comm, file, [&] {
      if (root) structure->finish(hashes);
    });
  } catch (...) {
    if (structure) structure->abandon();
    std::error_code ignored;
    if (root) std::filesystem::remove(temp, ignored);
    throw;
  }
  std::optional<std::string> problem;
  if (root) problem = publish_file(temp, file);
  agree(comm, problem);
}

}  // namespace tessera
