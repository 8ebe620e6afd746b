// The memory and time effect of activation recomputation (train.recompute) on one rank.
//
// Usage: bench_recompute [CONFIG.toml] [--slots N] [--steps N]
// For each of none, selective and full: builds the config's model, keeps N microbatches of
// train.micro_batch sequences in flight (what a pipeline stage holds at once: N = 1 for a
// single stage, up to the number of stages for 1F1B), runs their forwards then their backwards,
// and prints the activation bytes held and the time per microbatch next to no recomputation.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "model/transformer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Measured {
  double activation_mb = 0.0;
  double seconds_per_microbatch = 0.0;
};

Measured measure(const tessera::Config& config, tessera::Recompute recompute, int slots,
                 int steps) {
  using namespace tessera;
  auto backend = make_cpu_backend();
  ModelPartition partition;
  partition.recompute = recompute;
  Transformer model(config.model, *backend, partition);
  model.parameters().initialize(config.train.seed);
  const int batch = config.train.micro_batch;
  const std::size_t rows = static_cast<std::size_t>(batch) * config.model.seq_len;
  std::vector<int32_t> tokens(rows), targets(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    tokens[i] = static_cast<int32_t>((i * 7919) % config.model.vocab_size);
    targets[i] = static_cast<int32_t>((i * 104729 + 1) % config.model.vocab_size);
  }
  const float scale = 1.0f / static_cast<float>(rows * slots);
  double seconds = 0.0;
  for (int step = 0; step <= steps; ++step) {  // step 0 allocates: not timed
    const auto start = Clock::now();
    for (int slot = 0; slot < slots; ++slot) {
      model.forward(slot, tokens.data(), targets.data(), batch, scale);
    }
    for (int slot = slots - 1; slot >= 0; --slot) model.backward(slot);
    if (step > 0) seconds += std::chrono::duration<double>(Clock::now() - start).count();
  }
  return {static_cast<double>(model.activation_bytes()) / 1e6, seconds / (steps * slots)};
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);  // the model's libraries expect MPI, though this runs on one rank
  std::string path = std::string(TESSERA_CONFIG_DIR) + "/bench-cpu.toml";
  int slots = 1, steps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--slots" && i + 1 < argc) {
      slots = std::atoi(argv[++i]);
    } else if (arg == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      path = arg;
    }
  }
  const tessera::Config config = tessera::load_config(path, {});
  std::printf("%s: %d microbatch(es) of %d x %d tokens in flight\n", path.c_str(), slots,
              config.train.micro_batch, config.model.seq_len);
  std::printf("%-10s %16s %12s %22s %10s\n", "recompute", "activations MB", "vs none",
              "fwd+bwd s/microbatch", "vs none");
  const Measured none = measure(config, tessera::Recompute::none, slots, steps);
  const char* names[] = {"none", "selective", "full"};
  for (tessera::Recompute mode :
       {tessera::Recompute::none, tessera::Recompute::selective, tessera::Recompute::full}) {
    const Measured m =
        mode == tessera::Recompute::none ? none : measure(config, mode, slots, steps);
    std::printf("%-10s %16.1f %11.2fx %22.4f %9.2fx\n", names[static_cast<int>(mode)],
                m.activation_mb, m.activation_mb / none.activation_mb, m.seconds_per_microbatch,
                m.seconds_per_microbatch / none.seconds_per_microbatch);
  }
  MPI_Finalize();
  return 0;
}
