// Checks of a checkpoint file that must not leave ranks behind: rank 0 alone reads the file's
// structure through HDF5's serial driver, where any failure (a corrupt object header that makes
// an HDF5 call fail, a forged size that makes an allocation fail) is caught and becomes one
// message that every rank then throws alike.
#include <exception>
#include <new>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera::checkpoint_detail {}  // namespace tessera::checkpoint_detail

namespace tessera {

bool checkpoint_file_left_open() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE) > 0; }

}  // namespace tessera

namespace tessera::checkpoint_detail {

std::string damaged_message(const std::filesystem::path& file, const std::string& what) {
  return "checkpoint " + file.string() + " is damaged (" + what +
         "); use an older checkpoint or rewrite it";
}

H5Id open_on_this_rank(const std::filesystem::path& file) {
  silence_hdf5();
  const hid_t id = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  if (id < 0) {
    throw UsageError("checkpoint " + file.string() +
                     " is missing or not a readable HDF5 file (truncated or corrupt); use an "
                     "older checkpoint or rewrite it");
  }
  return H5Id(id, H5Fclose);
}

std::string check_on_root(MPI_Comm comm, const std::filesystem::path& file,
                          const RootCheck& check) {
  std::error_code status;
  agree(comm, std::filesystem::is_regular_file(file, status)
                  ? std::nullopt
                  : std::optional<std::string>("checkpoint " + file.string() +
                                               " does not exist or is not a regular file; "
                                               "check the path"));
  std::optional<std::string> problem;
  std::string shared;
  if (comm_rank(comm) == 0) {
    try {
      const H5Id file_id = open_on_this_rank(file);
      problem = version_problem(file_id.get(), file);
      if (!problem) problem = check(file_id.get(), shared);
    } catch (const UsageError& error) {
      problem = error.what();
    } catch (const std::bad_alloc&) {
      problem = damaged_message(file, "a size in it does not fit in memory");
    } catch (const std::exception& error) {
      problem = damaged_message(file, error.what());
    }
  }
  agree(comm, problem);
  broadcast_string(comm, shared, 0);
  return shared;
}

std::optional<std::string> version_problem(hid_t file_id, const std::filesystem::path& file) {
  int version = -1;
  if (H5Aexists(file_id, kVersionAttribute) > 0) {
    H5Id attribute(TESSERA_H5(H5Aopen(file_id, kVersionAttribute, H5P_DEFAULT)), H5Aclose);
    H5Id space(TESSERA_H5(H5Aget_space(attribute.get())), H5Sclose);
    H5Id type(TESSERA_H5(H5Aget_type(attribute.get())), H5Tclose);
    if (H5Sget_simple_extent_npoints(space.get()) == 1 && H5Tget_class(type.get()) == H5T_INTEGER) {
      TESSERA_H5(H5Aread(attribute.get(), H5T_NATIVE_INT, &version));
    }
  }
  if (version == kCheckpointFormatVersion) return std::nullopt;
  return "checkpoint " + file.string() + " has format version " + std::to_string(version) +
         " (-1: none) but this build reads version " + std::to_string(kCheckpointFormatVersion) +
         "; use a matching tessera";
}

std::optional<std::string> stored_data_problem(hid_t dataset, const std::string& path,
                                               const std::vector<int64_t>& shape,
                                               const std::filesystem::path& file) {
  // A dataset whose bytes were never written reads back as fill values: hashing them would
  // take as long as its (possibly forged, huge) shape says, and fail only at the end.
  const auto expected = static_cast<hsize_t>(element_count(shape)) * sizeof(float);
  H5Id properties(TESSERA_H5(H5Dget_create_plist(dataset)), H5Pclose);
  const bool contiguous = H5Pget_layout(properties.get()) == H5D_CONTIGUOUS;
  const hsize_t stored = H5Dget_storage_size(dataset);
  if (stored == 0 || (contiguous && stored != expected)) {
    return damaged_message(file, "dataset " + path + " holds " + std::to_string(stored) +
                                     " bytes of data where its shape " + shape_string(shape) +
                                     " needs " + std::to_string(expected));
  }
  if (!stored_checksum(dataset)) {
    return damaged_message(file, "dataset " + path + " has no valid '" + kChecksumAttribute +
                                     "' attribute; it was not written by tessera");
  }
  return std::nullopt;
}

}  // namespace tessera::checkpoint_detail
