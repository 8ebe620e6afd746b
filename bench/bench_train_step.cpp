// Whole training steps (forward, backward, clipping, AdamW) of a shipped config, next to the
// sgemm peak of the same GEMM library measured in the same run on the same cores.
//
// Usage: bench_train_step [CONFIG.toml] [--steps N] [--set key=value ...] [--breakdown] [--json]
// The backend is the config's (--set train.backend="kokkos" for the Kokkos backend).
// Prints tokens/s, model GFLOP/s (6N + attention, per token) and the fraction of sgemm peak.
// --breakdown also runs the same steps through a ProfilingBackend (the model and AdamW driven
// directly, one rank) and prints the time of every kernel per step. --json prints one JSON
// object instead of the table (for bench/bench_vs_pytorch.py).
#include <mpi.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/host_memory.hpp"
#include "bench/profiling_backend.hpp"
#include "core/error.hpp"
#include "io/config/config.hpp"
#include "model/transformer.hpp"
#include "optim/adamw.hpp"
#include "parallel/layout/training_layout.hpp"
#include "parallel/mpi_session.hpp"
#include "train/backend_choice.hpp"
#include "train/trainer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Best GFLOP/s of a square fp32 GEMM through dnnl_sgemm over a few repetitions, on the same
/// (huge-page) memory as the backend's buffers, which makes it about 1 % higher than on 4 KiB
/// pages.
double sgemm_peak_gflops(int n) {
  const std::size_t count = static_cast<std::size_t>(n) * n;
  tessera::cpu::HostArray<float> a_memory, b_memory, c_memory;
  float* a = a_memory.reserve(count);
  float* b = b_memory.reserve(count);
  float* c = c_memory.reserve(count);
  std::fill_n(a, count, 1.0f);
  std::fill_n(b, count, 0.5f);
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / seconds_since(start) / 1e9);
  }
  return best;
}

/// The peak of this rank's cores: the better of one GEMM on all its threads and one
/// single-threaded GEMM per thread at the same time (summed). A multi-threaded GEMM pays for
/// synchronisation that independent ones do not, so the second is often higher; taking the
/// larger makes "fraction of peak" the stricter figure whatever the layout.
double rank_sgemm_peak_gflops(int n) {
  const double shared = sgemm_peak_gflops(n);
  if (omp_get_max_threads() == 1) return shared;
  double independent = 0.0;
  // Inside a parallel region oneDNN runs each dnnl_sgemm on its calling thread only.
#pragma omp parallel reduction(+ : independent)
  independent += sgemm_peak_gflops(n);
  return std::max(shared, independent);
}

struct Breakdown {
  std::vector<std::pair<std::string, tessera::bench::KernelTime>> kernels;  // per step, sorted
  double step_seconds = 0.0;                                                // wall, per step
};

/// Runs `steps` full steps of one rank on `device` through a ProfilingBackend (the first one
/// excluded) and returns the mean time per step of every kernel.
Breakdown profile_steps(const tessera::Config& config, int steps,
                        std::unique_ptr<tessera::Backend> device) {
  using namespace tessera;
  bench::ProfilingBackend backend(std::move(device));
  Transformer model(config.model, backend);
  AdamW optimizer(config.train, model.parameters(), backend);
  const int batch = config.train.micro_batch;
  const std::size_t rows = static_cast<std::size_t>(batch) * config.model.seq_len;
  std::vector<int32_t> tokens(rows), targets(rows);
  std::mt19937 engine(1);
  std::uniform_int_distribution<int32_t> token(0, config.model.vocab_size - 1);
  for (std::size_t r = 0; r < rows; ++r) tokens[r] = token(engine), targets[r] = token(engine);
  ParameterStore& parameters = model.parameters();
  double measured = 0.0;
  for (int step = 1; step <= steps; ++step) {
    if (step == 2) backend.reset();  // the first step allocates
    const auto start = Clock::now();
    parameters.zero_gradients();
    model.forward(0, tokens.data(), targets.data(), batch, 1.0f / static_cast<float>(rows));
    model.backward(0);
    const double norm =
        std::sqrt(backend.sum_of_squares(parameters.gradients(), parameters.total_count()));
    optimizer.step(step, config.train.lr, clip_factor(config.train.grad_clip, norm));
    if (step >= 2) measured += seconds_since(start);
  }
  const double per_step = 1.0 / std::max(1, steps - 1);
  Breakdown result;
  result.step_seconds = measured * per_step;
  for (auto [name, time] : backend.totals()) {
    time.seconds *= per_step;
    time.calls = static_cast<long>(std::lround(static_cast<double>(time.calls) * per_step));
    result.kernels.emplace_back(name, time);
  }
  std::sort(result.kernels.begin(), result.kernels.end(),
            [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  return result;
}

void print_breakdown(const Breakdown& breakdown) {
  std::printf("\nper-kernel time of one step (profiled run, %.1f ms per step wall):\n",
              1e3 * breakdown.step_seconds);
  std::printf("  %-32s %9s %7s %6s\n", "kernel", "ms/step", "share", "calls");
  double in_kernels = 0.0;
  for (const auto& [name, time] : breakdown.kernels) {
    in_kernels += time.seconds;
    std::printf("  %-32s %9.2f %6.1f%% %6ld\n", name.c_str(), 1e3 * time.seconds,
                100.0 * time.seconds / breakdown.step_seconds, time.calls);
  }
  const double outside = breakdown.step_seconds - in_kernels;
  std::printf("  %-32s %9.2f %6.1f%%\n", "(outside kernels)", 1e3 * outside,
              100.0 * outside / breakdown.step_seconds);
}

void print_breakdown_json(const Breakdown& breakdown) {
  std::printf(", \"breakdown_step_s\": %.6f, \"breakdown\": [", breakdown.step_seconds);
  for (std::size_t i = 0; i < breakdown.kernels.size(); ++i) {
    const auto& [name, time] = breakdown.kernels[i];
    std::printf("%s[\"%s\", %.6f, %ld]", i == 0 ? "" : ", ", name.c_str(), time.seconds,
                time.calls);
  }
  std::printf("]");
}

}  // namespace

int main(int argc, char** argv) {
  tessera::MpiSession mpi(argc, argv);  // train() runs on MPI_COMM_WORLD
  std::string config_path = std::string(TESSERA_CONFIG_DIR) + "/bench-cpu.toml";
  int steps = 10;
  bool breakdown = false, json = false;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--steps" && i + 1 < argc) {
      steps = std::stoi(argv[++i]);
    } else if (arg == "--set" && i + 1 < argc) {
      overrides.emplace_back(argv[++i]);
    } else if (arg == "--breakdown") {
      breakdown = true;
    } else if (arg == "--json") {
      json = true;
    } else {
      config_path = arg;
    }
  }
  // One run directory per job (rank 0's process id), so benchmarks run side by side.
  int job_id = static_cast<int>(::getpid());
  MPI_Bcast(&job_id, 1, MPI_INT, 0, MPI_COMM_WORLD);
  const auto run_dir = std::filesystem::temp_directory_path() /
                       ("tessera_bench_train_step_" + std::to_string(job_id));
  if (mpi.rank() == 0) std::filesystem::remove_all(run_dir);
  MPI_Barrier(MPI_COMM_WORLD);
  overrides.insert(overrides.begin(),
                   {"train.steps=" + std::to_string(steps), "train.warmup_steps=1", "eval.every=0",
                    "log.progress=plain", "run.dir=" + run_dir.string()});
  tessera::Config config;
  try {
    config = tessera::load_config(config_path, overrides);
    tessera::resolve_layout(config, mpi.size());  // every rank rejects the same layout
  } catch (const tessera::UsageError& error) {
    if (mpi.rank() == 0) std::fprintf(stderr, "bench_train_step: %s\n", error.what());
    return 2;
  }

  // Every rank measures at the same time on its own cores; the sum is the job's peak.
  const double rank_peak = rank_sgemm_peak_gflops(2048);
  double peak = 0.0;
  MPI_Allreduce(&rank_peak, &peak, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  // The breakdown's backend is made before the training run and outlives it: a Kokkos backend's
  // runtime cannot start a second time in one process.
  std::unique_ptr<tessera::Backend> profiled_device =
      breakdown && mpi.rank() == 0
          ? tessera::make_device_backend(config.train.backend, config.train.precision)
          : nullptr;
  std::ostringstream quiet;
  const tessera::TrainResult result = tessera::train(config, quiet);
  if (mpi.rank() != 0) return 0;
  std::filesystem::remove_all(run_dir);
  const double flops_per_token = tessera::model_flops_per_token(config.model);
  const double gflops = flops_per_token * result.tokens_per_s / 1e9;
  const Breakdown profiled =
      breakdown ? profile_steps(config, steps, std::move(profiled_device)) : Breakdown{};
  if (json) {
    std::printf(
        "{\"tokens_per_s\": %.3f, \"gflops\": %.3f, \"sgemm_peak_gflops\": %.3f, "
        "\"flops_per_token\": %.6g, \"threads\": %d, \"ranks\": %d",
        result.tokens_per_s, gflops, peak, flops_per_token, omp_get_max_threads(), mpi.size());
    if (breakdown) print_breakdown_json(profiled);
    std::printf("}\n");
    return 0;
  }
  std::printf("config            %s (%d steps, first step excluded)\n", config_path.c_str(), steps);
  std::printf("ranks x threads   %d x %d\n", mpi.size(), omp_get_max_threads());
  std::printf("tokens/s          %.0f\n", result.tokens_per_s);
  std::printf("model GFLOP/s     %.1f  (%.3g FLOP/token)\n", gflops, flops_per_token);
  std::printf(
      "sgemm peak        %.1f GFLOP/s  (dnnl_sgemm 2048^3 on every core at once, same run)\n",
      peak);
  std::printf("fraction of peak  %.1f%%\n", 100.0 * gflops / peak);
  if (breakdown) print_breakdown(profiled);
  return 0;
}
