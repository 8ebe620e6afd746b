// `tessera calibrate`: measures one device through tessera's kernels and writes its hardware
// profile (doc/hardware-profiles.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `calibrate` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_calibrate_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
