// `tessera prepare INPUTS... -o DIR`: a corpus to token shards, on one process or on every rank
// of an MPI job (each rank encodes its share of the chunks; io/data/prepare.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `prepare` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_prepare_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
