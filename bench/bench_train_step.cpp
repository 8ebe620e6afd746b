// Whole training steps (forward, backward, clipping, AdamW) of a shipped config, next to the
// sgemm peak of the same GEMM library measured in the same run on the same cores.
//
// Usage: bench_train_step [CONFIG.toml] [--steps N] [--set key=value ...]
// Prints tokens/s, model TFLOP/s (6N + attention, per token) and the fraction of sgemm peak.
#include <oneapi/dnnl/dnnl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "io/config/config.hpp"
#include "model/transformer.hpp"
#include "parallel/mpi_session.hpp"
#include "train/trainer.hpp"

namespace {

/// Best GFLOP/s of a square fp32 GEMM through dnnl_sgemm over a few repetitions.
double sgemm_peak_gflops(int n) {
  std::vector<float> a(static_cast<std::size_t>(n) * n, 1.0f), b(a.size(), 0.5f), c(a.size());
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / seconds / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  tessera::MpiSession mpi(argc, argv);  // train() runs on MPI_COMM_WORLD (here: one rank)
  std::string config_path = std::string(TESSERA_CONFIG_DIR) + "/bench-cpu.toml";
  int steps = 10;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--steps" && i + 1 < argc) {
      steps = std::stoi(argv[++i]);
    } else if (arg == "--set" && i + 1 < argc) {
      overrides.emplace_back(argv[++i]);
    } else {
      config_path = arg;
    }
  }
  const auto run_dir = std::filesystem::temp_directory_path() / "tessera_bench_train_step";
  std::filesystem::remove_all(run_dir);
  overrides.insert(overrides.begin(),
                   {"train.steps=" + std::to_string(steps), "train.warmup_steps=1", "eval.every=0",
                    "log.progress=plain", "run.dir=" + run_dir.string()});
  const tessera::Config config = tessera::load_config(config_path, overrides);

  const double peak = sgemm_peak_gflops(2048);
  std::ostringstream quiet;
  const tessera::TrainResult result = tessera::train(config, quiet);
  double flops_per_token = 0.0;
  {
    auto backend = tessera::make_cpu_backend();
    flops_per_token = tessera::Transformer(config.model, *backend).flops_per_token();
  }
  const double gflops = flops_per_token * result.tokens_per_s / 1e9;
  std::printf("config            %s (%d steps, first step excluded)\n", config_path.c_str(), steps);
  std::printf("tokens/s          %.0f\n", result.tokens_per_s);
  std::printf("model GFLOP/s     %.1f  (%.3g FLOP/token)\n", gflops, flops_per_token);
  std::printf("sgemm peak        %.1f GFLOP/s  (dnnl_sgemm 2048^3, same run)\n", peak);
  std::printf("fraction of peak  %.1f%%\n", 100.0 * gflops / peak);
  return 0;
}
