// Checks of a checkpoint file that must not leave ranks behind: rank 0 alone reads the file's
// structure through HDF5's serial driver, where any failure (a corrupt object header that makes
// an HDF5 call fail, a forged size that makes an allocation fail) is caught and becomes one
// message that every rank then throws alike.
#include <exception>
#include <new>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

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

namespace {

/// The file's format version attribute, or -1 when it has none that is one integer.
int format_version(hid_t file_id) {
  int version = -1;
  if (H5Aexists(file_id, kVersionAttribute) > 0) {
    H5Id attribute(TESSERA_H5(H5Aopen(file_id, kVersionAttribute, H5P_DEFAULT)), H5Aclose);
    H5Id space(TESSERA_H5(H5Aget_space(attribute.get())), H5Sclose);
    H5Id type(TESSERA_H5(H5Aget_type(attribute.get())), H5Tclose);
    if (H5Sget_simple_extent_npoints(space.get()) == 1 && H5Tget_class(type.get()) == H5T_INTEGER) {
      TESSERA_H5(H5Aread(attribute.get(), H5T_NATIVE_INT, &version));
    }
  }
  return version;
}

/// The shape of a float32 dataset of rank 1 to 8 with no dimension 0 and at most 2^40 elements
/// (4 TiB: more than any model's tensor), or none: nothing is sized by a shape outside that.
std::optional<std::vector<int64_t>> tensor_shape(hid_t dataset) {
  H5Id type(TESSERA_H5(H5Dget_type(dataset)), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 4) return std::nullopt;
  H5Id space(TESSERA_H5(H5Dget_space(dataset)), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > 8) return std::nullopt;
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  TESSERA_H5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr));
  constexpr hsize_t kMaxElements = hsize_t{1} << 40;
  hsize_t elements = 1;
  for (hsize_t extent : dims) {
    if (extent == 0 || extent > kMaxElements || elements * extent > kMaxElements) {
      return std::nullopt;
    }
    elements *= extent;
  }
  return std::vector<int64_t>(dims.begin(), dims.end());
}

}  // namespace

CheckedFile check_on_root(MPI_Comm comm, const std::filesystem::path& file,
                          const RootCheck& check) {
  std::error_code status;
  agree(comm, std::filesystem::is_regular_file(file, status)
                  ? std::nullopt
                  : std::optional<std::string>("checkpoint " + file.string() +
                                               " does not exist or is not a regular file; "
                                               "check the path"));
  std::optional<std::string> problem;
  std::string shared;
  int version = -1;
  if (comm_rank(comm) == 0) {
    try {
      const H5Id file_id = open_on_this_rank(file);
      version = format_version(file_id.get());
      if (const auto scheme = checksum_scheme(version)) {
        problem = check(file_id.get(), *scheme, shared);
      } else {
        problem = "checkpoint " + file.string() + " has format version " + std::to_string(version) +
                  " (-1: none) but this build reads versions " +
                  std::to_string(kOldestReadableCheckpointFormat) + " to " +
                  std::to_string(kCheckpointFormatVersion) + "; use a matching tessera";
      }
    } catch (const UsageError& error) {
      problem = error.what();
    } catch (const std::bad_alloc&) {
      problem = damaged_message(file, "a size in it does not fit in memory");
    } catch (const std::exception& error) {
      problem = damaged_message(file, error.what());
    }
  }
  agree(comm, problem);
  MPI_Bcast(&version, 1, MPI_INT, 0, comm);
  broadcast_string(comm, shared, 0);
  return {*checksum_scheme(version), std::move(shared)};
}

std::pair<ChecksumScheme, std::vector<PlannedDataset>> check_structure(
    MPI_Comm comm, const std::filesystem::path& file) {
  // Rank 0 lists the datasets and checks each one's type, shape and stored size; the others get
  // the list (name and shape).
  const CheckedFile checked = check_on_root(
      comm, file,
      [&](hid_t file_id, const ChecksumScheme& scheme,
          std::string& shared) -> std::optional<std::string> {
        nlohmann::json datasets = nlohmann::json::array();
        for (const std::string& name : dataset_names(file_id)) {
          const std::string path = "/" + name;
          H5Id dataset(TESSERA_H5(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT)), H5Dclose);
          auto shape = tensor_shape(dataset.get());
          if (!shape) {
            return "checkpoint " + file.string() + ": dataset " + path +
                   " is not a float32 tensor of rank 1 to 8 with at most 2^40 "
                   "elements, none of its dimensions 0";
          }
          if (auto problem = stored_data_problem(dataset.get(), path, *shape, file, scheme)) {
            return problem;
          }
          datasets.push_back({{"name", name}, {"shape", *shape}});
        }
        shared = datasets.dump();
        return std::nullopt;
      });
  std::vector<PlannedDataset> plan;
  for (const nlohmann::json& dataset : nlohmann::json::parse(checked.shared)) {
    plan.push_back({dataset.at("name").get<std::string>(),
                    dataset.at("shape").get<std::vector<int64_t>>(),
                    {},
                    {},
                    {}});
  }
  return {checked.scheme, std::move(plan)};
}

std::optional<std::string> stored_data_problem(hid_t dataset, const std::string& path,
                                               const std::vector<int64_t>& shape,
                                               const std::filesystem::path& file,
                                               const ChecksumScheme& scheme) {
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
  if (!stored_checksum(dataset, scheme)) {
    return damaged_message(file, "dataset " + path + " has no valid '" + scheme.attribute +
                                     "' attribute; it was not written by tessera");
  }
  return std::nullopt;
}

}  // namespace tessera::checkpoint_detail
