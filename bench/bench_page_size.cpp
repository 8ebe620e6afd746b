// The linear layers' GEMMs of one training step (forward, input and weight gradients, through
// the CPU backend's own linear_forward / linear_backward) on buffers from the backend's
// allocator, which puts buffers of 2 MiB and more on transparent huge pages, next to the same
// GEMMs on buffers from std::vector (4 KiB pages where the THP mode is "madvise", Debian's
// default). The two alternate within the process, round after round, so a busy machine slows
// both alike; the median of the per-round ratios is the figure to quote.
//
// Usage: bench_page_size [CONFIG.toml] [--rounds N] [--set key=value ...]
// Runs on the OpenMP threads it is given (OMP_NUM_THREADS).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "bench/bench_command_line.hpp"

namespace {

using Clock = std::chrono::steady_clock;

using tessera::bench::LinearLayer;

/// The buffers of one linear layer: activations, weights and their gradients.
struct LayerBuffers {
  float *x, *y, *dy, *dx, *w, *dw, *b, *db;
};

/// Seconds of one step's worth of the layers' GEMMs on `buffers`.
double step_seconds(tessera::Backend& backend, const std::vector<LinearLayer>& layers,
                    const std::vector<LayerBuffers>& buffers, int rows) {
  const auto start = Clock::now();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LinearLayer& l = layers[i];
    const LayerBuffers& t = buffers[i];
    for (int call = 0; call < l.calls; ++call) {
      backend.linear_forward(t.y, t.x, t.w, t.b, rows, l.in, l.out);
      backend.linear_backward(t.dx, t.dw, t.db, t.dy, t.x, t.w, rows, l.in, l.out);
    }
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The step's linear layers on huge pages against 4 KiB pages", "bench_page_size"};
  int rounds = 11;
  app.add_option("--rounds", rounds, "Alternating rounds of both (default 11)")
      ->check(CLI::Range(1, 1 << 20));
  const tessera::Config config = tessera::bench::parse_config_command_line(app, argc, argv);
  const int rows = config.train.micro_batch * config.model.seq_len;
  const std::vector<LinearLayer> layers = tessera::bench::step_linear_layers(config.model);

  const std::unique_ptr<tessera::Backend> backend = tessera::make_cpu_backend();
  // The same layers twice: once from the backend's allocator, once from std::vector.
  std::vector<float*> owned;
  std::vector<std::vector<float>> ordinary;
  const auto from_backend = [&](std::size_t count) {
    owned.push_back(backend->allocate(count));
    std::vector<float> values(count, 0.01f);
    backend->copy_from_host(owned.back(), values.data(), count);
    return owned.back();
  };
  const auto from_vector = [&](std::size_t count) {  // moves keep each buffer as ordinary grows
    ordinary.emplace_back(count, 0.01f);
    return ordinary.back().data();
  };
  // One layer's buffers, each from `make` (either allocator above).
  const auto layer_buffers = [rows](const LinearLayer& l, const auto& make) -> LayerBuffers {
    const std::size_t in = static_cast<std::size_t>(rows) * l.in;
    const std::size_t out = static_cast<std::size_t>(rows) * l.out;
    const std::size_t weights = static_cast<std::size_t>(l.in) * l.out;
    const std::size_t bias = static_cast<std::size_t>(l.out);
    return {make(in),      make(out),     make(out),  make(in),
            make(weights), make(weights), make(bias), make(bias)};
  };
  std::vector<LayerBuffers> huge, small;
  for (const LinearLayer& l : layers) {
    huge.push_back(layer_buffers(l, from_backend));
    small.push_back(layer_buffers(l, from_vector));
  }

  step_seconds(*backend, layers, huge, rows);  // builds the cached primitives, warms up
  step_seconds(*backend, layers, small, rows);
  std::vector<double> huge_seconds, small_seconds, ratios;
  std::printf("%s\n%d rows, %d alternating rounds\n",
              tessera::bench::describe_model(config.model).c_str(), rows, rounds);
  std::printf("round  huge pages (ms)  4 KiB pages (ms)  4 KiB / huge\n");
  for (int round = 0; round < rounds; ++round) {
    huge_seconds.push_back(step_seconds(*backend, layers, huge, rows));
    small_seconds.push_back(step_seconds(*backend, layers, small, rows));
    ratios.push_back(small_seconds.back() / huge_seconds.back());
    std::printf("%5d  %15.1f  %16.1f  %12.3f\n", round, 1e3 * huge_seconds.back(),
                1e3 * small_seconds.back(), ratios.back());
  }
  std::printf("median %14.1f  %16.1f  %12.3f  (median of the per-round ratios)\n",
              1e3 * median(huge_seconds), 1e3 * median(small_seconds), median(ratios));
  for (float* buffer : owned) backend->release(buffer);
  return 0;
}
