// `tessera plan`: ranks every layout of a model on N nodes of a machine by throughput, with the
// memory and time of each (doc/scaling.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `plan` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_plan_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
