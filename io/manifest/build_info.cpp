// describe_build: what this binary was built from and runs on. The git commit, compiler and
// CUDA switch come from CMake (io/manifest/CMakeLists.txt) as definitions of this file only.
#include <hdf5.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl.h>

#include <array>
#include <string>

#include "git_state.hpp"  // generated on every build: cmake/TesseraGitState.cmake
#include "io/manifest/manifest.hpp"

#ifdef TESSERA_MANIFEST_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tessera {
namespace {

std::string mpi_library_version() {
  std::array<char, MPI_MAX_LIBRARY_VERSION_STRING> text{};
  int length = 0;
  MPI_Get_library_version(text.data(), &length);
  std::string version(text.data(), static_cast<std::size_t>(length));
  while (!version.empty() &&
         (version.back() == '\n' || version.back() == '\0' || version.back() == ' ')) {
    version.pop_back();
  }
  return version;
}

std::string hdf5_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

std::string onednn_version() {
  const dnnl_version_t* version = dnnl_version();
  return "oneDNN " + std::to_string(version->major) + "." + std::to_string(version->minor) + "." +
         std::to_string(version->patch) + " (" + version->hash + ")";
}

/// The tree's changes beyond the commit when it was built: false when clean, else how many
/// files differ and a hash that names those changes; null outside a git checkout.
nlohmann::json uncommitted_changes() {
  if (TESSERA_GIT_CHANGED_FILES < 0) return nullptr;
  if (TESSERA_GIT_CHANGED_FILES == 0) return false;
  return {{"files", TESSERA_GIT_CHANGED_FILES}, {"changes_hash", TESSERA_GIT_CHANGES_HASH}};
}

nlohmann::json cuda_runtime_version() {
#ifdef TESSERA_MANIFEST_CUDA
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) return "unknown";
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
#else
  return nullptr;  // built without CUDA
#endif
}

}  // namespace

nlohmann::json describe_build() {
  return {{"tessera_version", TESSERA_VERSION},
          {"git_commit", TESSERA_GIT_COMMIT},
          {"git_uncommitted", uncommitted_changes()},
          {"compiler", TESSERA_COMPILER},
          {"mpi", mpi_library_version()},
          {"hdf5", hdf5_version()},
          {"blas", onednn_version()},
          {"cuda_runtime", cuda_runtime_version()}};
}

}  // namespace tessera
