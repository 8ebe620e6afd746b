// describe_checkpoint: what `tessera inspect` prints, through serial HDF5 (default driver).
#include <algorithm>
#include <sstream>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/checkpoint/checkpoint_internal.hpp"

namespace tessera {

using namespace checkpoint_detail;

namespace {

// Longer string attributes (the metadata with its config) are cut in the listing.
constexpr std::size_t kShownChars = 400;

std::string type_name(hid_t type) {
  const std::size_t bytes = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return "float" + std::to_string(8 * bytes);
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(8 * bytes);
    case H5T_STRING:
      return "string";
    default:
      return "other";
  }
}

std::string attribute_value(hid_t attribute) {
  H5Id type(TESSERA_H5(H5Aget_type(attribute)), H5Tclose);
  H5Id space(TESSERA_H5(H5Aget_space(attribute)), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return "(array)";
  const H5T_class_t kind = H5Tget_class(type.get());
  if (kind == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_NONE) {
    uint64_t value = 0;
    TESSERA_H5(H5Aread(attribute, H5T_NATIVE_UINT64, &value));
    return to_hex16(value);
  }
  if (kind == H5T_INTEGER) {
    long long value = 0;
    TESSERA_H5(H5Aread(attribute, H5T_NATIVE_LLONG, &value));
    return std::to_string(value);
  }
  if (kind == H5T_STRING && H5Tis_variable_str(type.get()) == 0) {
    std::string text(H5Tget_size(type.get()), '\0');
    TESSERA_H5(H5Aread(attribute, type.get(), text.data()));
    text.resize(std::min(text.find('\0'), text.size()));
    if (text.size() <= kShownChars) return text;
    const std::string total = std::to_string(text.size());
    text.resize(kShownChars);
    text.append("... (").append(total).append(" chars)");
    return text;
  }
  std::string unknown = type_name(type.get());
  unknown.append(" (not shown)");
  return unknown;
}

/// One line per attribute of `location`. No HDF5 iteration callbacks here: exceptions must
/// not unwind through HDF5's C frames.
void describe_attributes(hid_t location, std::ostringstream& text) {
  H5O_info_t info;
  TESSERA_H5(H5Oget_info2(location, &info, H5O_INFO_NUM_ATTRS));
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    H5Id attribute(TESSERA_H5(H5Aopen_by_idx(location, ".", H5_INDEX_NAME, H5_ITER_INC, i,
                                             H5P_DEFAULT, H5P_DEFAULT)),
                   H5Aclose);
    const ssize_t length = TESSERA_H5(H5Aget_name(attribute.get(), 0, nullptr));
    std::string name(static_cast<std::size_t>(length) + 1, '\0');
    TESSERA_H5(H5Aget_name(attribute.get(), name.size(), name.data()));
    name.resize(static_cast<std::size_t>(length));
    text << "    @" << name << " = " << attribute_value(attribute.get()) << "\n";
  }
}

void describe_dataset(hid_t file_id, const std::string& name, std::ostringstream& text) {
  H5Id dataset(TESSERA_H5(H5Dopen2(file_id, name.c_str(), H5P_DEFAULT)), H5Dclose);
  H5Id type(TESSERA_H5(H5Dget_type(dataset.get())), H5Tclose);
  H5Id space(TESSERA_H5(H5Dget_space(dataset.get())), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::clamp(rank, 0, 32)));
  if (rank > 0 && rank <= 32) {
    TESSERA_H5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr));
  }
  text << "  /" << name << "  " << type_name(type.get()) << " "
       << shape_string(std::vector<int64_t>(dims.begin(), dims.end())) << "\n";
  describe_attributes(dataset.get(), text);
}

}  // namespace

std::string read_checkpoint_manifest(const std::filesystem::path& file) {
  H5Id file_id = open_on_this_rank(file);
  if (H5Aexists(file_id.get(), kManifestAttribute) <= 0) {
    throw UsageError("checkpoint " + file.string() +
                     " has no manifest attribute (written before manifests existed); pass the "
                     "run's manifest.json instead");
  }
  constexpr std::size_t kMaxManifestBytes = std::size_t{64} << 20;  // as for the metadata
  std::optional<std::string> text =
      read_text_attribute(file_id.get(), kManifestAttribute, kMaxManifestBytes);
  if (!text) {
    throw UsageError("checkpoint " + file.string() + " has a malformed manifest attribute");
  }
  return *text;
}

std::string describe_checkpoint(const std::filesystem::path& file) {
  H5Id file_id = open_on_this_rank(file);
  std::ostringstream text;
  try {
    text << file.string() << "\n  root attributes:\n";
    describe_attributes(file_id.get(), text);
    text << "  datasets (name, dtype, global shape, attributes):\n";
    for (const std::string& name : dataset_names(file_id.get())) {
      describe_dataset(file_id.get(), name, text);
    }
  } catch (const InternalError& error) {  // an HDF5 call failing on a corrupt header
    throw UsageError(damaged_message(file, error.what()));
  }
  return text.str();
}

}  // namespace tessera
