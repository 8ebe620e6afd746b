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
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "io/config/config.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Layer {
  int in = 0, out = 0, calls = 0;
};

/// The buffers of one linear layer: activations, weights and their gradients.
struct LayerBuffers {
  float *x, *y, *dy, *dx, *w, *dw, *b, *db;
};

/// Seconds of one step's worth of the layers' GEMMs on `buffers`.
double step_seconds(tessera::Backend& backend, const std::vector<Layer>& layers,
                    const std::vector<LayerBuffers>& buffers, int rows) {
  const auto start = Clock::now();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
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
  std::string config_path = std::string(TESSERA_CONFIG_DIR) + "/bench-cpu.toml";
  std::vector<std::string> overrides;
  int rounds = 11;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::stoi(argv[++i]);
    } else if (arg == "--set" && i + 1 < argc) {
      overrides.emplace_back(argv[++i]);
    } else if (!arg.empty() && arg[0] != '-') {
      config_path = arg;
    } else {
      std::fprintf(stderr,
                   "bench_page_size: unknown argument '%s'; usage: bench_page_size [CONFIG.toml] "
                   "[--rounds N] [--set key=value ...]\n",
                   arg.c_str());
      return 2;
    }
  }
  tessera::Config config;
  try {
    config = tessera::load_config(config_path, overrides);
  } catch (const tessera::UsageError& error) {
    std::fprintf(stderr, "bench_page_size: %s\n", error.what());
    return 2;
  }
  const tessera::ModelConfig& model = config.model;
  const int rows = config.train.micro_batch * model.seq_len;
  const int d = model.d_model;
  const std::vector<Layer> layers = {{d, 3 * d, model.n_layers},
                                     {d, d, model.n_layers},
                                     {d, model.ffn_hidden, model.n_layers},
                                     {model.ffn_hidden, d, model.n_layers},
                                     {d, model.vocab_size, 1}};

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
  const auto from_vector = [&](std::size_t count) {
    ordinary.emplace_back(count, 0.01f);
    return ordinary.back().data();
  };
  std::vector<LayerBuffers> huge, small;
  ordinary.reserve(8 * layers.size());
  for (const Layer& l : layers) {
    const std::size_t in = static_cast<std::size_t>(rows) * l.in;
    const std::size_t out = static_cast<std::size_t>(rows) * l.out;
    const std::size_t weights = static_cast<std::size_t>(l.in) * l.out;
    for (auto* set : {&huge, &small}) {
      const auto make = set == &huge ? std::function<float*(std::size_t)>(from_backend)
                                     : std::function<float*(std::size_t)>(from_vector);
      set->push_back({make(in), make(out), make(out), make(in), make(weights), make(weights),
                      make(static_cast<std::size_t>(l.out)),
                      make(static_cast<std::size_t>(l.out))});
    }
  }

  step_seconds(*backend, layers, huge, rows);  // builds the cached primitives, warms up
  step_seconds(*backend, layers, small, rows);
  std::vector<double> huge_seconds, small_seconds, ratios;
  std::printf("config %s, %d rows, %d alternating rounds\n", config_path.c_str(), rows, rounds);
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
