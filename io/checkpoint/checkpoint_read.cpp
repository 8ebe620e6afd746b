// read_checkpoint, read_checkpoint_metadata and verify_checkpoint: validate the file against
// what is expected before reading anything sized by it, verify checksums, then read hyperslabs.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

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
                                         const PlannedDataset& planned) {
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
  return stored_data_problem(dataset.get(), path, planned.shape, file);
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

/// Reads every planned dataset collectively; each rank selects its requested block or nothing.
void read_blocks(hid_t file_id, const std::vector<PlannedDataset>& plan,
                 const std::vector<TensorReadRequest>& requests) {
  H5Id transfer(TESSERA_H5(H5Pcreate(H5P_DATASET_XFER)), H5Pclose);
  TESSERA_H5(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE));
  for (const PlannedDataset& planned : plan) {
    std::vector<const TensorReadRequest*> mine;
    for (const TensorReadRequest& request : requests) {
      if (request.name == planned.name) mine.push_back(&request);
    }
    const std::string path = "/" + planned.name;
    H5Id dataset(TESSERA_H5(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT)), H5Dclose);
    H5Id space(TESSERA_H5(H5Dget_space(dataset.get())), H5Sclose);
    for (int round = 0; round < planned.rounds; ++round) {
      const TensorReadRequest* request =
          round < static_cast<int>(mine.size()) ? mine[round] : nullptr;
      const hsize_t elements =
          request ? static_cast<hsize_t>(element_count(request->local_shape)) : 0;
      H5Id memory(TESSERA_H5(H5Screate_simple(1, &elements, nullptr)), H5Sclose);
      if (request) {
        select_block(space.get(), request->global_offset, request->local_shape);
      } else {
        select_block(space.get(), {}, {});
        TESSERA_H5(H5Sselect_none(memory.get()));
      }
      float dummy = 0.0f;
      TESSERA_H5(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, memory.get(), space.get(), transfer.get(),
                         request ? request->data : &dummy));
    }
  }
}

}  // namespace

void read_checkpoint(MPI_Comm comm, const std::filesystem::path& file,
                     const std::vector<TensorReadRequest>& requests) {
  std::vector<Declaration> declarations;
  agree(comm, declare(
                  requests, [](const TensorReadRequest&) { return true; }, declarations));
  const auto plan = plan_datasets(comm, declarations, /*check_coverage=*/false);
  // Every tensor's shape, type and stored size against the model's before anything is read or
  // allocated by what the file says.
  check_on_root(comm, file, [&](hid_t file_id, std::string&) -> std::optional<std::string> {
    for (const PlannedDataset& planned : plan) {
      if (auto problem = check_dataset(file_id, file, planned)) return problem;
    }
    return std::nullopt;
  });
  H5Id file_id = open_checkpoint(comm, file);
  verify_datasets(comm, file_id.get(), file, plan);
  read_blocks(file_id.get(), plan, requests);
}

nlohmann::json read_checkpoint_metadata(MPI_Comm comm, const std::filesystem::path& file) {
  const std::string text = check_on_root(
      comm, file, [&](hid_t file_id, std::string& shared) -> std::optional<std::string> {
        if (H5Aexists(file_id, kMetadataAttribute) <= 0) {
          return "checkpoint " + file.string() +
                 " has no metadata attribute; it is not a tessera checkpoint";
        }
        auto read = read_text_attribute(file_id, kMetadataAttribute, kMaxMetadataBytes);
        if (!read) return "checkpoint " + file.string() + " has a malformed metadata attribute";
        shared = std::move(*read);
        return std::nullopt;
      });
  auto metadata = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  agree(comm, metadata.is_discarded() ? std::optional<std::string>("checkpoint " + file.string() +
                                                                   ": metadata is not valid JSON")
                                      : std::nullopt);
  return metadata;
}

void verify_checkpoint(MPI_Comm comm, const std::filesystem::path& file) {
  // Rank 0 lists the datasets and checks each one's type, shape and stored size; the others get
  // the list (name and shape) and share the hashing.
  const std::string listing = check_on_root(
      comm, file, [&](hid_t file_id, std::string& shared) -> std::optional<std::string> {
        nlohmann::json datasets = nlohmann::json::array();
        for (const std::string& name : dataset_names(file_id)) {
          const std::string path = "/" + name;
          H5Id dataset(TESSERA_H5(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT)), H5Dclose);
          auto shape = tensor_shape(dataset.get());
          if (!shape) {
            return "checkpoint " + file.string() + ": dataset " + path +
                   " is not a float32 tensor of rank 1 to 8 with at most 2^40 elements, none "
                   "of its dimensions 0";
          }
          if (auto problem = stored_data_problem(dataset.get(), path, *shape, file)) {
            return problem;
          }
          datasets.push_back({{"name", name}, {"shape", *shape}});
        }
        shared = datasets.dump();
        return std::nullopt;
      });
  std::vector<PlannedDataset> plan;
  for (const nlohmann::json& dataset : nlohmann::json::parse(listing)) {
    plan.push_back(
        {dataset.at("name").get<std::string>(), dataset.at("shape").get<std::vector<int64_t>>()});
  }
  H5Id file_id = open_checkpoint(comm, file);
  verify_datasets(comm, file_id.get(), file, plan);
}

}  // namespace tessera
