// Helpers shared by writing, reading and verifying checkpoints.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera::checkpoint_detail {

namespace {

/// Keeps the description of the innermost (deepest) HDF5 error on the stack.
herr_t keep_innermost(unsigned, const H5E_error2_t* error, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (text->empty() && error->desc != nullptr) {
    *text = std::string(error->func_name != nullptr ? error->func_name : "?") + ": " + error->desc;
  }
  return 0;
}

int world_rank() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int rank = 0;
  if (initialized != 0) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// Pieces of at most this many elements bound the memory of hashing a large tensor (64 MiB).
constexpr int64_t kHashPieceElements = int64_t{16} << 20;

}  // namespace

void throw_h5_failure(const char* statement, const char* file, int line) {
  std::string innermost;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &innermost);
  H5Eclear2(H5E_DEFAULT);
  throw InternalError(std::string("HDF5 call failed: ") + statement + " at " + file + ":" +
                      std::to_string(line) + " on rank " + std::to_string(world_rank()) +
                      (innermost.empty() ? "" : " (" + innermost + ")"));
}

H5Id& H5Id::operator=(H5Id&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = -1;
  }
  return *this;
}

void H5Id::reset() {
  if (id_ >= 0 && close_ != nullptr) close_(id_);
  id_ = -1;
}

void silence_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

int comm_rank(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

int comm_size(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}

void broadcast_string(MPI_Comm comm, std::string& text, int root) {
  auto length = static_cast<unsigned long long>(text.size());
  MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, root, comm);
  text.resize(length);
  MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, root, comm);
}

namespace {

/// Collective: the message of the lowest rank that passes one, on every rank.
std::optional<std::string> agreed_error(MPI_Comm comm,
                                        const std::optional<std::string>& local_error) {
  const int size = comm_size(comm);
  int mine = local_error ? comm_rank(comm) : size;
  int first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return std::nullopt;
  std::string message = local_error.value_or("");
  broadcast_string(comm, message, first);
  return message;
}

}  // namespace

void agree(MPI_Comm comm, const std::optional<std::string>& local_error) {
  if (auto message = agreed_error(comm, local_error)) throw UsageError(*message);
}

void agree_damaged(MPI_Comm comm, const std::optional<std::string>& local_error) {
  if (auto message = agreed_error(comm, local_error)) throw CheckpointDamaged(*message);
}

std::optional<ChecksumScheme> checksum_scheme(int version) {
  if (version == 1) return ChecksumScheme{1, "fnv1a64", false};
  if (version == kCheckpointFormatVersion) return ChecksumScheme{};
  return std::nullopt;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  return text + "]";
}

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  return count;
}

std::optional<std::string> check_block(const std::string& name,
                                       const std::vector<int64_t>& global_shape,
                                       const std::vector<int64_t>& local_shape,
                                       const std::vector<int64_t>& global_offset,
                                       const void* data) {
  const std::string where = "checkpoint tensor '" + name + "': ";
  if (name.empty() || name.front() == '/' || name.back() == '/') {
    return where + "names must be non-empty relative paths like \"model/embed/weight\"";
  }
  if (global_shape.empty() || local_shape.size() != global_shape.size() ||
      global_offset.size() != global_shape.size()) {
    return where + "global shape " + shape_string(global_shape) + ", local shape " +
           shape_string(local_shape) + " and offset " + shape_string(global_offset) +
           " must have the same non-zero rank";
  }
  for (std::size_t d = 0; d < global_shape.size(); ++d) {
    if (global_shape[d] <= 0 || local_shape[d] <= 0 || global_offset[d] < 0 ||
        global_offset[d] + local_shape[d] > global_shape[d]) {
      return where + "block " + shape_string(local_shape) + " at offset " +
             shape_string(global_offset) + " does not fit in global shape " +
             shape_string(global_shape) + "; fix the block description";
    }
  }
  if (data == nullptr) return where + "data pointer is null; pass the host buffer of the block";
  return std::nullopt;
}

namespace {

bool boxes_overlap(const Box& a, const Box& b) {
  for (std::size_t d = 0; d < a.offset.size(); ++d) {
    if (a.offset[d] + a.shape[d] <= b.offset[d] || b.offset[d] + b.shape[d] <= a.offset[d]) {
      return false;
    }
  }
  return true;
}

/// The distinct blocks of one tensor over all ranks, each with every (rank, index) that
/// declared it: rank 0's merge in plan_datasets. One declarer of each block, its owner, reads
/// it from the file and sends it to the others (ReadLoads picks it).
class BoxOwners {
 public:
  void add(int rank, int index, Box box) {
    for (auto& [known, declarers] : distinct_) {
      if (known.offset == box.offset && known.shape == box.shape) {
        declarers.push_back({rank, index});
        return;
      }
    }
    distinct_.push_back({std::move(box), {{rank, index}}});
  }

  /// Gives each distinct block the declarer `choose` picks from its declarers (all
  /// (rank, index) pairs, in the order they declared it); must be called once, before copies()
  /// and hashers_if_tiling().
  template <class Choose>
  void pick_owners(Choose&& choose) {
    for (auto& [box, declarers] : distinct_) {
      const std::pair<int, int> owner = choose(box, declarers);
      owners_.push_back(owner);
      for (const auto& [rank, index] : declarers) {
        if (std::pair(rank, index) != owner)
          copies_.push_back({rank, index, owner.first, owner.second});
      }
    }
  }

  const std::vector<BlockCopy>& copies() const { return copies_; }

  /// Each distinct block with its owner, once picked.
  std::vector<OwnedBlock> owned() const {
    std::vector<OwnedBlock> blocks;
    for (std::size_t i = 0; i < owners_.size(); ++i) {
      blocks.push_back({owners_[i].first, owners_[i].second, distinct_[i].first});
    }
    return blocks;
  }

  /// The owners, when the distinct blocks tile `shape` exactly once; otherwise none.
  std::vector<std::pair<int, int>> hashers_if_tiling(const std::vector<int64_t>& shape) const {
    int64_t covered = 0;
    for (std::size_t i = 0; i < distinct_.size(); ++i) {
      covered += element_count(distinct_[i].first.shape);
      for (std::size_t j = 0; j < i; ++j) {
        if (boxes_overlap(distinct_[i].first, distinct_[j].first)) return {};
      }
    }
    if (covered != element_count(shape)) return {};
    return owners_;
  }

 private:
  std::vector<std::pair<Box, std::vector<std::pair<int, int>>>> distinct_;
  std::vector<std::pair<int, int>> owners_;  // per distinct block, once picked
  std::vector<BlockCopy> copies_;
};

/// Spreads the reading over the ranks: each block goes to the declarer whose rank has been
/// given the fewest elements so far (the lowest rank on a tie), so dp replicas, which all ask
/// for the same blocks, each read a share of the file in parallel and send it to the others,
/// instead of the first replica reading it all (bench/bench_checkpoint.py, the restore).
class ReadLoads {
 public:
  explicit ReadLoads(int ranks) : elements_(static_cast<std::size_t>(ranks), 0) {}

  std::pair<int, int> choose(const Box& box, const std::vector<std::pair<int, int>>& declarers) {
    const auto load = [&](const std::pair<int, int>& declarer) {  // (elements, rank)
      return std::pair(elements_[static_cast<std::size_t>(declarer.first)], declarer.first);
    };
    std::pair<int, int> owner = declarers.front();
    for (const auto& candidate : declarers) {
      if (load(candidate) < load(owner)) owner = candidate;
    }
    elements_[static_cast<std::size_t>(owner.first)] += element_count(box.shape);
    return owner;
  }

 private:
  std::vector<int64_t> elements_;
};

}  // namespace

std::vector<PlannedDataset> plan_datasets(MPI_Comm comm, const std::vector<Declaration>& mine,
                                          bool check_coverage) {
  nlohmann::json local = nlohmann::json::array();
  for (const Declaration& d : mine) {
    nlohmann::json boxes = nlohmann::json::array();
    for (const Box& box : d.boxes) boxes.push_back({box.offset, box.shape});
    local.push_back({d.name, d.shape, d.written, std::move(boxes)});
  }
  std::string text = local.dump();
  const int rank = comm_rank(comm);
  const int size = comm_size(comm);
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(size), displs(size);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, comm);
  std::string all;
  if (rank == 0) {
    for (int r = 1; r < size; ++r) displs[r] = displs[r - 1] + lengths[r - 1];
    all.resize(static_cast<std::size_t>(displs[size - 1] + lengths[size - 1]));
  }
  MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), displs.data(), MPI_CHAR, 0,
              comm);
  std::optional<std::string> error;
  std::string plan_text;
  if (rank == 0) {
    // name -> (shape, elements written, first rank that declared it)
    std::map<std::string, std::tuple<std::vector<int64_t>, int64_t, int>> merged;
    std::map<std::string, BoxOwners> owners;
    for (int r = 0; r < size && !error; ++r) {
      auto entries = nlohmann::json::parse(all.substr(displs[r], lengths[r]));
      for (const auto& entry : entries) {
        auto name = entry[0].get<std::string>();
        auto shape = entry[1].get<std::vector<int64_t>>();
        auto [it, inserted] = merged.try_emplace(name, shape, 0, r);
        auto& [known_shape, written, first_rank] = it->second;
        if (known_shape != shape) {
          error = "checkpoint tensor '" + name + "': rank " + std::to_string(first_rank) +
                  " declares global shape " + shape_string(known_shape) + " but rank " +
                  std::to_string(r) + " declares " + shape_string(shape) +
                  "; every rank must describe the same global shape";
          break;
        }
        written += entry[2].get<int64_t>();
        int index = 0;
        for (const auto& box : entry[3]) {
          owners[name].add(
              r, index++, {box[0].get<std::vector<int64_t>>(), box[1].get<std::vector<int64_t>>()});
        }
      }
    }
    ReadLoads loads(size);
    for (auto& [name, boxes] : owners) {
      boxes.pick_owners([&](const Box& box, const std::vector<std::pair<int, int>>& declarers) {
        return loads.choose(box, declarers);
      });
    }
    nlohmann::json plan = nlohmann::json::array();
    for (const auto& [name, value] : merged) {
      const auto& [shape, written, first_rank] = value;
      if (!error && check_coverage && written != element_count(shape)) {
        error = "checkpoint tensor '" + name + "' of shape " + shape_string(shape) + " has " +
                std::to_string(element_count(shape)) + " elements but its writer blocks hold " +
                std::to_string(written) + "; mark exactly one copy of each element writer=true";
      }
      nlohmann::json copies = nlohmann::json::array();
      for (const BlockCopy& copy : owners[name].copies()) {
        copies.push_back({copy.rank, copy.index, copy.owner_rank, copy.owner_index});
      }
      nlohmann::json blocks = nlohmann::json::array();
      for (const OwnedBlock& block : owners[name].owned()) {
        blocks.push_back({block.rank, block.index, block.box.offset, block.box.shape});
      }
      plan.push_back({name, shape, owners[name].hashers_if_tiling(shape), std::move(copies),
                      std::move(blocks)});
      (void)first_rank;
    }
    plan_text = plan.dump();
  }
  agree(comm, error);
  broadcast_string(comm, plan_text, 0);
  std::vector<PlannedDataset> datasets;
  for (const auto& entry : nlohmann::json::parse(plan_text)) {
    std::vector<BlockCopy> copies;
    for (const auto& copy : entry[3]) {
      copies.push_back(
          {copy[0].get<int>(), copy[1].get<int>(), copy[2].get<int>(), copy[3].get<int>()});
    }
    std::vector<OwnedBlock> blocks;
    for (const auto& block : entry[4]) {
      blocks.push_back(
          {block[0].get<int>(),
           block[1].get<int>(),
           {block[2].get<std::vector<int64_t>>(), block[3].get<std::vector<int64_t>>()}});
    }
    datasets.push_back({entry[0].get<std::string>(), entry[1].get<std::vector<int64_t>>(),
                        entry[2].get<std::vector<std::pair<int, int>>>(), std::move(copies),
                        std::move(blocks)});
  }
  return datasets;
}

std::optional<std::string> read_text_attribute(hid_t object, const char* name,
                                               std::size_t max_bytes) {
  H5Id attribute(TESSERA_H5(H5Aopen(object, name, H5P_DEFAULT)), H5Aclose);
  H5Id type(TESSERA_H5(H5Aget_type(attribute.get())), H5Tclose);
  const std::size_t size = H5Tget_size(type.get());
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) != 0 || size == 0 ||
      size > max_bytes) {
    return std::nullopt;
  }
  std::string text(size, '\0');
  TESSERA_H5(H5Aread(attribute.get(), type.get(), text.data()));
  text.resize(std::min(text.find('\0'), text.size()));
  return text;
}

H5Id open_checkpoint(MPI_Comm comm, const std::filesystem::path& file) {
  silence_hdf5();
  H5Id fapl(TESSERA_H5(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose);
  TESSERA_H5(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL));
  const hid_t id = H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl.get());
  H5Eclear2(H5E_DEFAULT);
  H5Id handle(id, H5Fclose);
  agree(comm, id >= 0 ? std::nullopt
                      : std::optional<std::string>(
                            "checkpoint " + file.string() +
                            " is not a readable HDF5 file (truncated or corrupt); use an older "
                            "checkpoint or rewrite it"));
  return handle;
}

namespace {

// Only collects names: nothing in it throws through HDF5's C frames (but bad_alloc).
herr_t collect_dataset(hid_t, const char* name, const H5O_info_t* info, void* out) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

std::vector<std::string> dataset_names(hid_t file_id) {
  std::vector<std::string> names;
  TESSERA_H5(
      H5Ovisit2(file_id, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &names, H5O_INFO_BASIC));
  return names;
}

void select_block(hid_t space, const std::vector<int64_t>& offset,
                  const std::vector<int64_t>& count) {
  if (count.empty()) {
    TESSERA_H5(H5Sselect_none(space));
    return;
  }
  std::vector<hsize_t> start(offset.begin(), offset.end());
  std::vector<hsize_t> extent(count.begin(), count.end());
  TESSERA_H5(
      H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr));
}

uint64_t hash_dataset(hid_t dataset, const std::vector<int64_t>& shape,
                      const ChecksumScheme& scheme) {
  // Pieces are runs along dimension `split` with every index before it fixed: the first
  // dimension whose trailing block fits a piece, so that pieces follow row-major order.
  const int dims = static_cast<int>(shape.size());
  int split = 0;
  int64_t trailing = element_count(shape) / shape[0];  // elements per index of `split`
  while (split + 1 < dims && trailing > kHashPieceElements) trailing /= shape[++split];
  const int64_t run = std::max<int64_t>(1, kHashPieceElements / trailing);
  std::vector<float> piece(static_cast<std::size_t>(std::min(run, shape[split]) * trailing));
  H5Id file_space(TESSERA_H5(H5Dget_space(dataset)), H5Sclose);
  uint64_t hash = scheme.by_position ? 0 : kFnv1a64Offset;
  uint64_t index = 0;  // of the piece's first element, in row-major global order
  std::vector<int64_t> offset(shape.size(), 0), count = shape;
  for (int d = 0; d < split; ++d) count[d] = 1;
  for (;;) {
    for (offset[split] = 0; offset[split] < shape[split]; offset[split] += run) {
      count[split] = std::min(run, shape[split] - offset[split]);
      select_block(file_space.get(), offset, count);
      const auto elements = static_cast<hsize_t>(count[split] * trailing);
      H5Id memory_space(TESSERA_H5(H5Screate_simple(1, &elements, nullptr)), H5Sclose);
      TESSERA_H5(H5Dread(dataset, H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(),
                         H5P_DEFAULT, piece.data()));
      const std::span<const float> values(piece.data(), elements);
      hash = scheme.by_position ? position_hash(values, index, hash)
                                : fnv1a64(std::as_bytes(values), hash);
      index += elements;
    }
    // The next index of the dimensions before `split`, odometer-wise; done after the last.
    int d = split - 1;
    while (d >= 0 && ++offset[d] == shape[d]) offset[d--] = 0;
    if (d < 0) return hash;
  }
}

uint64_t block_position_hash(const std::vector<int64_t>& global_shape,
                             const std::vector<int64_t>& local_shape,
                             const std::vector<int64_t>& global_offset, const float* data) {
  // The block's rows (runs along the last dimension) in order; each is contiguous in the
  // tensor's row-major order, starting at the global index of its first element.
  const std::size_t dims = global_shape.size();
  const int64_t row = local_shape[dims - 1];
  std::vector<int64_t> index(dims, 0);  // within the block, last dimension unused
  uint64_t sum = 0;
  for (const float* run = data;; run += row) {
    uint64_t first = 0;
    for (std::size_t d = 0; d < dims; ++d) {
      first = first * static_cast<uint64_t>(global_shape[d]) +
              static_cast<uint64_t>(global_offset[d] + index[d]);
    }
    sum = position_hash(std::span(run, static_cast<std::size_t>(row)), first, sum);
    // The next row, odometer-wise over the dimensions before the last; done after the last.
    std::size_t d = dims - 1;
    while (d > 0 && ++index[d - 1] == local_shape[d - 1]) index[--d] = 0;
    if (d == 0) return sum;
  }
}

std::optional<uint64_t> stored_checksum(hid_t dataset, const ChecksumScheme& scheme) {
  if (H5Aexists(dataset, scheme.attribute) <= 0) return std::nullopt;
  H5Id attribute(TESSERA_H5(H5Aopen(dataset, scheme.attribute, H5P_DEFAULT)), H5Aclose);
  H5Id space(TESSERA_H5(H5Aget_space(attribute.get())), H5Sclose);
  H5Id type(TESSERA_H5(H5Aget_type(attribute.get())), H5Tclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1 || H5Tget_class(type.get()) != H5T_INTEGER ||
      H5Tget_size(type.get()) != 8) {
    return std::nullopt;
  }
  uint64_t value = 0;
  TESSERA_H5(H5Aread(attribute.get(), H5T_NATIVE_UINT64, &value));
  return value;
}

void verify_datasets(MPI_Comm comm, hid_t file_id, const std::filesystem::path& file,
                     const std::vector<PlannedDataset>& datasets, const ChecksumScheme& scheme) {
  const int rank = comm_rank(comm);
  const int size = comm_size(comm);
  std::optional<std::string> error;
  for (std::size_t i = static_cast<std::size_t>(rank); i < datasets.size() && !error;
       i += static_cast<std::size_t>(size)) {
    const std::string path = "/" + datasets[i].name;
    try {
      H5Id dataset(TESSERA_H5(H5Dopen2(file_id, path.c_str(), H5P_DEFAULT)), H5Dclose);
      const auto expected = stored_checksum(dataset.get(), scheme);
      if (!expected) {
        error = "checkpoint " + file.string() + ": dataset " + path + " has no valid '" +
                scheme.attribute +
                "' attribute; the file was not written by tessera or is corrupt; use an older "
                "checkpoint";
      } else if (hash_dataset(dataset.get(), datasets[i].shape, scheme) != *expected) {
        error = "checkpoint " + file.string() + ": dataset " + path +
                " fails its checksum (data corrupt); use an older checkpoint";
      }
    } catch (const std::exception& failure) {  // agreed below, never thrown on one rank alone
      error = "checkpoint " + file.string() + ": dataset " + path + " cannot be read (" +
              failure.what() + "); use an older checkpoint";
    }
  }
  agree_damaged(comm, error);
}

}  // namespace tessera::checkpoint_detail
