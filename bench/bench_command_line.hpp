// What the single-process GEMM benchmarks (bench_step_gemms, bench_page_size) share: the
// command line [CONFIG.toml] [--set key=value ...] on top of each one's own options, and the
// linear layers of one training step of the config.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "io/config/config.hpp"

namespace tessera::bench {

/// Adds CONFIG.toml (default configs/bench-cpu.toml) and --set to `app`, which holds the
/// benchmark's own options, parses the command line and loads the config. On bad input prints
/// one line naming the problem and exits with status 2; --help prints the usage and exits 0.
Config parse_config_command_line(CLI::App& app, int argc, char** argv);

/// One linear layer of a step: `calls` layers of the model multiply `in` features into `out`.
struct LinearLayer {
  std::string name;
  int in = 0, out = 0, calls = 0;
};

/// One line naming the model's shape, for the head of a benchmark's output.
std::string describe_model(const ModelConfig& model);

/// The linear layers of one training step of `model`, without tensor parallelism.
std::vector<LinearLayer> step_linear_layers(const ModelConfig& model);

}  // namespace tessera::bench
