// `tessera calibrate [--backend cuda] [--precision fp32,bf16] [-o profile.json]`: GEMM rates per
// shape class, attention forward and backward, host <-> device copies, on this process's device.
#include "cli/calibrate_command.hpp"

#include <mpi.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>

#include "calibrate/hardware_profile.hpp"
#include "core/error.hpp"
#include "train/backend_choice.hpp"

namespace tessera {
namespace {

struct CalibrateOptions {
  std::string backend = "cpu";
  std::vector<std::string> precisions{"fp32"};
  std::string output = "hardware-profile.json";
  std::vector<std::string> attention;
  double copy_mib = 1024;
  CalibrationOptions measure;
};

AttentionClass parse_attention(const std::string& text) {
  static const std::regex pattern(R"((\d+)x(\d+)x(\d+))");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) {
    throw UsageError("--attention " + text +
                     " is not SEQxHEADSxHEAD_DIM; pass e.g. --attention 1024x12x64");
  }
  return {std::stoi(match[1]), std::stoi(match[2]), std::stoi(match[3])};
}

void run(CalibrateOptions& options) {
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (ranks > 1) {
    throw UsageError("tessera calibrate measures one device and runs as one process, not " +
                     std::to_string(ranks) + "; start it without srun/mpirun");
  }
  if (!options.attention.empty()) {
    options.measure.attention.clear();
    for (const std::string& text : options.attention)
      options.measure.attention.push_back(parse_attention(text));
  }
  options.measure.copy_bytes = static_cast<std::size_t>(options.copy_mib * (1 << 20));
  const BackendKind kind = options.backend == "cuda"     ? BackendKind::cuda
                           : options.backend == "kokkos" ? BackendKind::kokkos
                                                         : BackendKind::cpu;
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<std::pair<std::string, Backend*>> backends;
  for (const std::string& precision : options.precisions) {
    owned.push_back(
        make_device_backend(kind, precision == "bf16" ? Precision::bf16 : Precision::fp32));
    backends.emplace_back(precision, owned.back().get());
  }
  // Written beside the output and renamed over it at the end, so that a calibration that fails
  // leaves an earlier profile alone; opened first, so that a bad path fails before the work.
  const std::filesystem::path output = options.output, temp = options.output + ".tmp";
  std::ofstream out(temp);
  if (!out) {
    throw UsageError("cannot write " + output.string() + "; pick a writable path with -o");
  }
  nlohmann::json profile;
  std::error_code ignored;
  try {
    profile = calibrate_device(backends, options.measure,
                               [](const std::string& line) { std::cout << line << std::endl; });
    out << profile.dump(2) << "\n";
    out.close();
    if (!out) throw UsageError("cannot write " + temp.string() + "; check space and permissions");
    std::filesystem::rename(temp, output);
  } catch (...) {
    std::filesystem::remove(temp, ignored);
    throw;
  }
  std::cout << "\n"
            << describe_profile(profile) << "\nhardware profile written to " << options.output
            << "\n";
}

}  // namespace

void add_calibrate_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Measure this device through tessera's kernels (GEMMs per shape class, attention, "
      "copies) and write its hardware profile");
  auto options = std::make_shared<CalibrateOptions>();
  cmd->add_option("--backend", options->backend, "cpu, cuda or kokkos")
      ->check(CLI::IsMember({"cpu", "cuda", "kokkos"}))
      ->capture_default_str();
  cmd->add_option("--precision", options->precisions, "fp32 and/or bf16 (comma-separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", options->output, "Where the JSON profile goes")
      ->capture_default_str();
  cmd->add_option("--d-models", options->measure.d_models,
                  "Model widths whose linear layers are measured (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--tokens", options->measure.tokens, "Rows of every GEMM, tokens of attention")
      ->capture_default_str();
  cmd->add_option("--vocab", options->measure.vocab, "Vocabulary of the head's GEMM")
      ->capture_default_str();
  cmd->add_option("--attention", options->attention,
                  "Attention classes SEQxHEADSxHEAD_DIM (repeatable; default 1024x12x64, "
                  "2048x16x128, 4096x32x128)");
  cmd->add_option("--copy-mib", options->copy_mib, "Size of the copies measured, MiB")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--min-seconds", options->measure.min_seconds,
                  "Each figure is timed over at least this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
