// Command line and step shapes of the GEMM benchmarks (see bench_command_line.hpp).
#include "bench/bench_command_line.hpp"

#include <cstdio>
#include <cstdlib>

#include "core/error.hpp"

namespace tessera::bench {

Config parse_config_command_line(CLI::App& app, int argc, char** argv) {
  std::string config_path = std::string(TESSERA_CONFIG_DIR) + "/bench-cpu.toml";
  std::vector<std::string> overrides;
  app.add_option("config", config_path, "Configuration file (default: configs/bench-cpu.toml)");
  app.add_option("--set", overrides, "Override one setting, e.g. --set model.n_layers=2")
      ->type_name("SECTION.KEY=VALUE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);
    std::exit(status == 0 ? 0 : 2);
  }
  try {
    return load_config(config_path, overrides);
  } catch (const UsageError& error) {
    std::fprintf(stderr, "%s: %s\n", app.get_name().c_str(), error.what());
    std::exit(2);
  }
}

std::string describe_model(const ModelConfig& model) {
  return "model: " + std::to_string(model.n_layers) + " layers, d_model " +
         std::to_string(model.d_model) + ", ffn " + std::to_string(model.ffn_hidden) + ", vocab " +
         std::to_string(model.vocab_size) + ", seq " + std::to_string(model.seq_len);
}

std::vector<LinearLayer> step_linear_layers(const ModelConfig& model) {
  const int d = model.d_model;
  const int up_calls = (model.swiglu() ? 2 : 1) * model.n_layers;  // SwiGLU: gate and up
  return {{"qkv", d, 3 * d, model.n_layers},
          {"attention out", d, d, model.n_layers},
          {"mlp up", d, model.ffn_hidden, up_calls},
          {"mlp down", model.ffn_hidden, d, model.n_layers},
          {"vocabulary head", d, model.vocab_size, 1}};
}

}  // namespace tessera::bench
