// `tessera report DIR`: a sweep's points, measured beside planned, as CSV, Markdown and PNG
// plots (doc/scaling.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `report` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_report_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
