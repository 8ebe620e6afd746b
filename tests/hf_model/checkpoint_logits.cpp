// checkpoint_logits: tessera's own logits of a checkpoint's model on one sequence of token ids,
// for test_hf_exchange.py to hold an exported model to.
//
//   checkpoint_logits CHECKPOINT.h5 ID,ID,... OUT.bin
//
// Loads the checkpoint's model (its configuration from the metadata, every tensor whole) on the
// CPU backend in one process, runs the forward on the ids (padded with id 0 to model.seq_len: a
// causal model's first rows do not see the padding) and writes the logits of the given positions,
// [len(ids), vocab] float32, little-endian.
#include <mpi.h>

#include <bit>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "model/transformer.hpp"

static_assert(std::endian::native == std::endian::little, "the output is little-endian");

namespace tessera {
namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  for (std::string id; std::getline(in, id, ',');) ids.push_back(std::stoi(id));
  return ids;
}

void load_parameters(const std::filesystem::path& file, Transformer& model, Backend& backend) {
  ParameterStore& parameters = model.parameters();
  std::vector<std::vector<float>> host;
  std::vector<TensorReadRequest> requests;
  for (const ParameterInfo& info : parameters.infos()) {
    host.emplace_back(info.count);
    TensorReadRequest request;
    request.name = "model/" + info.name;
    request.global_shape = info.global_shape;
    request.local_shape = info.local_shape;
    request.global_offset = info.global_offset;
    request.data = host.back().data();
    requests.push_back(std::move(request));
  }
  read_checkpoint(MPI_COMM_SELF, file, requests);
  for (std::size_t i = 0; i < host.size(); ++i) {
    backend.copy_from_host(parameters.value(i), host[i].data(), host[i].size());
  }
}

void write_logits(const std::filesystem::path& file, const std::vector<int32_t>& ids,
                  const std::filesystem::path& out) {
  const nlohmann::json metadata = read_checkpoint_metadata(MPI_COMM_SELF, file);
  const Config config = parse_config(metadata.at("config").get<std::string>(), {});
  const int seq = config.model.seq_len;
  if (ids.empty() || static_cast<int>(ids.size()) > seq) {
    throw UsageError("give 1 to model.seq_len = " + std::to_string(seq) + " ids");
  }
  std::unique_ptr<Backend> backend = make_cpu_backend();
  Transformer model(config.model, *backend);
  load_parameters(file, model, *backend);
  std::vector<int32_t> tokens(static_cast<std::size_t>(seq), 0), targets(tokens.size(), 0);
  std::copy(ids.begin(), ids.end(), tokens.begin());
  model.forward(0, tokens.data(), targets.data(), 1, 0.0f);
  const std::size_t vocab = static_cast<std::size_t>(config.model.vocab_size);
  std::vector<float> logits(ids.size() * vocab);
  backend->copy_to_host(logits.data(), model.logits(0), logits.size());
  std::ofstream(out, std::ios::binary)
      .write(reinterpret_cast<const char*>(logits.data()),
             static_cast<std::streamsize>(logits.size() * sizeof(float)));
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int status = 0;
  if (argc != 4) {
    std::cerr << "usage: checkpoint_logits CHECKPOINT.h5 ID,ID,... OUT.bin\n";
    status = 2;
  } else {
    try {
      tessera::write_logits(argv[1], tessera::parse_ids(argv[2]), argv[3]);
    } catch (const std::exception& e) {
      std::cerr << "checkpoint_logits: " << e.what() << "\n";
      status = 1;
    }
  }
  MPI_Finalize();
  return status;
}
