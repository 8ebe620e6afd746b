// The tessera command: `tessera train`, `tessera prepare`, `tessera inspect`,
// `tessera reproduce`, `tessera slurm`, `tessera calibrate`, `tessera plan`, `tessera sweep`,
// `tessera report`, `tessera tokenize`, `tessera eval`, `tessera generate`,
// `tessera export`, `tessera import`.
//
// Errors the user can fix (UsageError) print one line and exit with status 2 before any work;
// internal failures print what failed and exit with status 1; a training run that stopped early
// with a checkpoint exits with tessera::kStoppedEarlyExit (75), one whose loss stayed non-finite
// with tessera::kDivergedExit (3).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/calibrate_command.hpp"
#include "cli/eval_command.hpp"
#include "cli/export_command.hpp"
#include "cli/generate_command.hpp"
#include "cli/import_command.hpp"
#include "cli/plan_command.hpp"
#include "cli/prepare_command.hpp"
#include "cli/report_command.hpp"
#include "cli/reproduce_command.hpp"
#include "cli/slurm_command.hpp"
#include "cli/sweep_command.hpp"
#include "cli/tokenize_command.hpp"
#include "core/error.hpp"
#include "io/checkpoint/checkpoint.hpp"
#include "io/config/config.hpp"
#include "parallel/agreement.hpp"
#include "parallel/mpi_session.hpp"
#include "train/stop_signals.hpp"
#include "train/trainer.hpp"

namespace {

constexpr int kUsageExit = 2;
constexpr int kFailureExit = 1;

/// Every configuration key with its type, default and meaning, for `tessera train --help`.
std::string describe_settings() {
  std::ostringstream out;
  out << "Settings (TOML sections and keys; any of them can be given with --set):\n";
  for (const tessera::ConfigKeyInfo& key : tessera::describe_config_keys()) {
    out << "  " << key.name << " (" << key.type << ", default " << key.default_value << ")\n      "
        << key.description << "\n";
  }
  return out.str();
}

void add_train_command(CLI::App& app, std::function<void()>& action, int& exit_status) {
  auto* cmd = app.add_subcommand("train", "Train a model as CONFIG.toml describes");
  auto config_path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("config", *config_path,
                  "Configuration file (see configs/ and doc/configuration.md)")
      ->required();
  cmd->add_option("--set", *overrides,
                  "Override one setting, e.g. --set train.steps=50 (repeatable)")
      ->type_name("SECTION.KEY=VALUE");
  cmd->footer(describe_settings());
  cmd->callback([&action, &exit_status, config_path, overrides] {
    action = [&exit_status, config_path, overrides] {
      const tessera::Config config = tessera::load_config(*config_path, *overrides);
      exit_status = tessera::exit_status(tessera::train(config, std::cout));
    };
  });
}

void add_inspect_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "inspect", "Print what a checkpoint file holds: tensors, global shapes, attributes");
  auto file = std::make_shared<std::string>();
  cmd->add_option("checkpoint", *file, "A checkpoint file (.h5) written by tessera train")
      ->required();
  cmd->callback([&action, file] {
    action = [file] {
      if (!std::filesystem::exists(*file)) {
        throw tessera::UsageError("checkpoint '" + *file +
                                  "' not found; pass a step_*.h5 file "
                                  "from checkpoint.dir");
      }
      std::cout << tessera::describe_checkpoint(*file);
    };
  });
}

/// Runs the command; every error becomes its exit status (after one line saying what).
int run_action(const std::function<void()>& action, const int& exit_status,
               const tessera::MpiSession& mpi) {
  const bool reporter = mpi.rank() == 0;  // prints problems every rank shares, once
  try {
    action();
    return exit_status;
  } catch (const tessera::PeerUsageError&) {
    return kUsageExit;  // the rank that met the problem prints it
  } catch (const tessera::RankUsageError& e) {
    std::cerr << "tessera: error: " << e.what() << "\n";
    return kUsageExit;
  } catch (const tessera::UsageError& e) {
    if (reporter) std::cerr << "tessera: error: " << e.what() << "\n";  // every rank saw it
    return kUsageExit;
  } catch (const tessera::ResourceError& e) {
    // Met by one rank or several: each says so, and the job ends, so that no rank waits.
    std::cerr << "tessera: rank " << mpi.rank() << " of " << mpi.size() << ": error: " << e.what()
              << "\n";
    if (mpi.size() > 1) mpi.abort_job(kFailureExit);
    return kFailureExit;
  } catch (const std::bad_alloc&) {
    // A host allocation outside the backend's buffers (their failures are ResourceErrors).
    std::cerr << "tessera: rank " << mpi.rank() << " of " << mpi.size()
              << ": error: out of host memory: " << tessera::kMemoryAdvice << "\n";
    if (mpi.size() > 1) mpi.abort_job(kFailureExit);
    return kFailureExit;
  } catch (const std::exception& e) {
    // One rank failing alone must not leave the others waiting in a collective.
    std::cerr << "tessera: rank " << mpi.rank() << " of " << mpi.size()
              << ": internal error: " << e.what() << "\n";
    if (mpi.size() > 1) mpi.abort_job(kFailureExit);
    return kFailureExit;
  }
}

}  // namespace

int main(int argc, char** argv) {
  tessera::block_stop_signals_in_new_threads();  // before MPI starts its threads
  tessera::MpiSession mpi(argc, argv);
  const bool reporter = mpi.rank() == 0;  // prints problems every rank shares, once
  CLI::App app{"tessera: train transformer language models on supercomputers"};
  app.set_version_flag("--version", std::string("tessera ") + TESSERA_VERSION);
  app.require_subcommand(1);
  std::function<void()> action;
  int exit_status = 0;  // what a command sets when it succeeds in more than one way
  add_train_command(app, action, exit_status);
  tessera::add_prepare_command(app, action);
  add_inspect_command(app, action);
  tessera::add_reproduce_command(app, action, exit_status);
  tessera::add_slurm_command(app, action);
  tessera::add_calibrate_command(app, action);
  tessera::add_plan_command(app, action);
  tessera::add_report_command(app, action);
  tessera::add_sweep_command(app, action);
  tessera::add_tokenize_command(app, action);
  tessera::add_eval_command(app, action);
  tessera::add_generate_command(app, action);
  tessera::add_export_command(app, action);
  tessera::add_import_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream silent;
    const int status = reporter ? app.exit(e) : app.exit(e, silent, silent);
    return status == 0 ? 0 : kUsageExit;
  }
  const int status = run_action(action, exit_status, mpi);
  if (tessera::checkpoint_file_left_open()) {
    // A checkpoint write failed and HDF5 could not close the file: its cleanup inside
    // MPI_Finalize would crash on it (HDF5 1.10), turning a clean error into a segfault.
    mpi.exit_without_finalize(status);
  }
  return status;
}
