// libFuzzer harness: checkpoint files damaged in arbitrary ways. The input is a list of edits to
// a valid checkpoint (5 bytes each: a little-endian offset into the file and a byte to XOR
// there; a trailing 1-4 bytes truncate the file at that fraction). Verifying, reading the
// metadata, reading the model's tensors and describing the file must each either work or be a
// UsageError, in bounded memory and time.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"

namespace {

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

/// The tensors of the valid file: a few shapes and ranks, as a model's would be.
std::vector<Tensor>& tensors() {
  static std::vector<Tensor> all = {
      {"model/embedding", {16, 8}, {}},
      {"model/layers/0/norm/weight", {8}, {}},
      {"optimizer/m/model/embedding", {2, 8, 8}, {}},
  };
  return all;
}

struct Files {
  std::filesystem::path valid, damaged;
  std::vector<char> bytes;  // of the valid file
};

Files& files() {
  static Files f;
  return f;
}

std::vector<tessera::TensorReadRequest> requests(std::vector<std::vector<float>>& storage) {
  std::vector<tessera::TensorReadRequest> all;
  storage.clear();
  storage.reserve(tensors().size());
  for (const Tensor& tensor : tensors()) {
    storage.emplace_back(tensor.values.size(), 0.0f);
    all.push_back({tensor.name, tensor.shape, tensor.shape,
                   std::vector<int64_t>(tensor.shape.size(), 0), storage.back().data()});
  }
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  MPI_Init(argc, argv);
  std::atexit([] { MPI_Finalize(); });
  std::string pattern = "/tmp/tessera_fuzz_checkpoint_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  Files& f = files();
  f.valid = std::filesystem::path(pattern) / "valid.h5";
  f.damaged = std::filesystem::path(pattern) / "damaged.h5";
  std::vector<tessera::TensorBlock> blocks;
  for (Tensor& tensor : tensors()) {
    int64_t count = 1;
    for (int64_t extent : tensor.shape) count *= extent;
    tensor.values.resize(static_cast<std::size_t>(count));
    for (int64_t i = 0; i < count; ++i) tensor.values[i] = 0.25f * static_cast<float>(i) - 3.0f;
    blocks.push_back({tensor.name, tensor.shape, tensor.shape,
                      std::vector<int64_t>(tensor.shape.size(), 0), tensor.values.data()});
  }
  tessera::write_checkpoint(MPI_COMM_SELF, f.valid, blocks, {{"step", 7}, {"config", "x"}},
                            R"({"manifest": true})");
  std::ifstream in(f.valid, std::ios::binary);
  f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Files& f = files();
  std::vector<char> bytes = f.bytes;
  std::size_t i = 0;
  for (; i + 5 <= size; i += 5) {
    const uint32_t offset =
        data[i] | data[i + 1] << 8 | data[i + 2] << 16 | static_cast<uint32_t>(data[i + 3]) << 24;
    bytes[offset % bytes.size()] ^= static_cast<char>(data[i + 4]);
  }
  if (i < size) bytes.resize(bytes.size() * data[i] / 256);  // a truncation
  {
    std::ofstream out(f.damaged, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const auto expect_usage_error_at_most = [](auto&& action) {
    try {
      action();
    } catch (const tessera::UsageError&) {
    }
  };
  expect_usage_error_at_most([&] { tessera::verify_checkpoint(MPI_COMM_SELF, f.damaged); });
  expect_usage_error_at_most([&] { tessera::read_checkpoint_metadata(MPI_COMM_SELF, f.damaged); });
  expect_usage_error_at_most([&] {
    std::vector<std::vector<float>> storage;
    tessera::read_checkpoint(MPI_COMM_SELF, f.damaged, requests(storage));
  });
  expect_usage_error_at_most([&] { tessera::describe_checkpoint(f.damaged); });
  expect_usage_error_at_most([&] { tessera::read_checkpoint_manifest(f.damaged); });
  return 0;
}
