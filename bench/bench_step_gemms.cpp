// The linear layers' GEMMs of one training step of a config, shape by shape, through both oneDNN
// paths (dnnl_sgemm and the matmul primitive), next to the 2048^3 sgemm peak of the same run.
//
// It shows why the CPU backend computes the weight gradients through matmul and the rest through
// dnnl_sgemm (src/backend/cpu/matmul_cache.hpp), and it gives the ceiling the step cannot pass: the
// time of these GEMMs alone at the rates the library reaches on these shapes. Dividing the step's
// model FLOPs by that time bounds the fraction of peak any implementation on top of this library
// can reach.
//
// Usage: bench_step_gemms [CONFIG.toml] [--rows N] [--reps N] [--set key=value ...]
//   --rows: rows of one microbatch on one rank (default train.micro_batch * model.seq_len).
// Runs on the OpenMP threads it is given (OMP_NUM_THREADS); single-threaded numbers are the ones
// of one rank of the dp=2 x 1 thread layout.
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/host_memory.hpp"
#include "backend/cpu/matmul_cache.hpp"
#include "bench/bench_command_line.hpp"
#include "core/error.hpp"

namespace {

using Clock = std::chrono::steady_clock;

/// Best seconds of `reps` calls.
double best_seconds(int reps, const std::function<void()>& call) {
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    const auto start = Clock::now();
    call();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

/// `count` floats set to `value` on the CPU backend's host memory.
class HostBuffer {
 public:
  explicit HostBuffer(std::size_t count, float value = 0.0f) : data_(memory_.reserve(count)) {
    std::fill_n(data_, count, value);
  }
  float* data() { return data_; }

 private:
  tessera::cpu::HostArray<float> memory_;
  float* data_;
};

using tessera::bench::LinearLayer;

struct Rates {
  double sgemm = 0.0, matmul = 0.0;  ///< seconds of one call
};

/// One GEMM of a linear layer: forward (NT), input gradient (NN) or weight gradient (TN).
Rates measure(char trans_a, char trans_b, int m, int n, int k, const float* a, int lda,
              const float* b, int ldb, float beta, float* c, int ldc,
              tessera::cpu::MatmulCache& matmuls, int reps) {
  Rates rates;
  const tessera::cpu::MatmulShape shape{trans_a, trans_b, m, n, k, lda, ldb, ldc, beta};
  matmuls.run(shape, a, b, c);  // builds the primitive outside the timing
  // Alternate the two paths so that a busy machine slows both alike.
  double sgemm = 1e30, matmul = 1e30;
  for (int round = 0; round < reps; ++round) {
    sgemm = std::min(sgemm, best_seconds(1, [&] {
                       dnnl_sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
                     }));
    matmul = std::min(matmul, best_seconds(1, [&] { matmuls.run(shape, a, b, c); }));
  }
  rates.sgemm = sgemm;
  rates.matmul = matmul;
  return rates;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The linear layers' GEMMs of one step through dnnl_sgemm and oneDNN matmul",
               "bench_step_gemms"};
  int rows = 0, reps = 15;
  app.add_option("--rows", rows, "Rows of one microbatch on one rank (default micro_batch * seq)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--reps", reps, "Alternating calls of each path per GEMM (default 15)")
      ->check(CLI::Range(1, 1 << 20));
  const tessera::Config config = tessera::bench::parse_config_command_line(app, argc, argv);
  if (rows == 0) rows = config.train.micro_batch * config.model.seq_len;
  const std::vector<LinearLayer> layers = tessera::bench::step_linear_layers(config.model);

  HostBuffer peak_a(2048 * 2048, 0.5f), peak_b(2048 * 2048, 0.25f), peak_c(2048 * 2048);
  // Measured before and after the shapes, the better of the two kept: on a busy machine one
  // unlucky moment must not make the shapes look faster than the peak.
  const auto measure_peak = [&] {
    return 2.0 * 2048 * 2048 * 2048 /
           best_seconds(5,
                        [&] {
                          dnnl_sgemm('N', 'N', 2048, 2048, 2048, 1.0f, peak_a.data(), 2048,
                                     peak_b.data(), 2048, 0.0f, peak_c.data(), 2048);
                        }) /
           1e9;
  };
  double peak = measure_peak();

  std::printf("%s\n%d rows per microbatch, best of %d alternating calls\n",
              tessera::bench::describe_model(config.model).c_str(), rows, reps);
  std::printf("%-16s %-6s %5s %6s %6s  %9s %9s  %s\n", "layer", "gemm", "calls", "in", "out",
              "sgemm", "matmul", "(GFLOP/s)");
  tessera::cpu::MatmulCache matmuls;
  double used_seconds = 0.0, best_path_seconds = 0.0, flops = 0.0;
  for (const LinearLayer& layer : layers) {
    const std::size_t in_count = static_cast<std::size_t>(rows) * layer.in;
    const std::size_t out_count = static_cast<std::size_t>(rows) * layer.out;
    // On the backend's own (huge-page) memory, so that the rates are the ones a step sees.
    const std::size_t weight_count = static_cast<std::size_t>(layer.out) * layer.in;
    HostBuffer x(in_count, 0.02f), y(out_count), dy(out_count, 0.01f), dx(in_count);
    HostBuffer w(weight_count, 0.1f), dw(weight_count);
    const int m = rows, in = layer.in, out = layer.out;
    enum class Path { sgemm, matmul };
    struct Gemm {
      const char* name;
      Rates rates;
      Path used;  // what the CPU backend does (linear.cpp)
    };
    Gemm gemms[] = {{"fwd",
                     measure('N', 'T', m, out, in, x.data(), in, w.data(), in, 0.0f, y.data(), out,
                             matmuls, reps),
                     Path::sgemm},
                    {"dgrad",
                     measure('N', 'N', m, in, out, dy.data(), out, w.data(), in, 0.0f, dx.data(),
                             in, matmuls, reps),
                     Path::sgemm},
                    {"wgrad",
                     measure('T', 'N', out, in, m, dy.data(), out, x.data(), in, 1.0f, dw.data(),
                             in, matmuls, reps),
                     Path::matmul}};
    const double gemm_flops = 2.0 * m * in * out;
    for (const Gemm& gemm : gemms) {
      const Rates& r = gemm.rates;
      const double used = gemm.used == Path::sgemm ? r.sgemm : r.matmul;
      const double best = std::min(r.sgemm, r.matmul);
      static constexpr const char* kPathNames[] = {"sgemm", "matmul"};
      std::printf("%-16s %-6s %5d %6d %6d  %9.1f %9.1f  tessera: %s\n", layer.name.c_str(),
                  gemm.name, layer.calls, in, out, gemm_flops / r.sgemm / 1e9,
                  gemm_flops / r.matmul / 1e9, kPathNames[static_cast<int>(gemm.used)]);
      used_seconds += layer.calls * used;
      best_path_seconds += layer.calls * best;
      flops += layer.calls * gemm_flops;
    }
  }
  peak = std::max(peak, measure_peak());
  std::printf("\nsgemm peak (2048^3, best before and after): %.1f GFLOP/s\n", peak);
  std::printf("linear-layer GEMMs of one microbatch: %.1f GFLOP\n", flops / 1e9);
  std::printf("  as tessera calls them: %7.1f ms  = %5.1f GFLOP/s = %4.1f %% of peak\n",
              used_seconds * 1e3, flops / used_seconds / 1e9,
              100.0 * flops / used_seconds / 1e9 / peak);
  std::printf("  best path per shape:   %7.1f ms  = %5.1f GFLOP/s = %4.1f %% of peak\n",
              best_path_seconds * 1e3, flops / best_path_seconds / 1e9,
              100.0 * flops / best_path_seconds / 1e9 / peak);
  std::printf(
      "A step also runs attention, norms, the loss and AdamW, so its fraction of peak stays "
      "below these.\n");
  return 0;
}
