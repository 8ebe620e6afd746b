// `tessera tokenize --tokenizer SPEC [FILE]`: text to token ids, or ids back to text with
// --decode, one line of output per line of input, so that a tokenizer can be checked against
// another implementation or a dataset's shards read by eye.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tessera {

/// Registers the `tokenize` subcommand on `app`; when it is chosen, `action` is set to run it.
void add_tokenize_command(CLI::App& app, std::function<void()>& action);

}  // namespace tessera
