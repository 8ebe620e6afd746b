// `tessera tokenize`: each input line (without its '\n') encoded on its own, ids separated by
// spaces; with --document the whole input is one text, as `tessera prepare` encodes a file.
#include "cli/tokenize_command.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "core/error.hpp"
#include "io/data/tokenizer_spec.hpp"

namespace tessera {
namespace {

struct TokenizeOptions {
  std::string tokenizer = "byte";
  std::string input = "-";
  bool decode = false;
  bool document = false;
  bool no_special_tokens = false;
  bool skip_special_tokens = false;
};

std::string read_input(const std::string& input) {
  if (input == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::ifstream file(input, std::ios::binary);
  if (!file) throw UsageError("input file '" + input + "' cannot be read; check the path");
  return std::string(std::istreambuf_iterator<char>(file), {});
}

/// The input's lines without their '\n'; a last line without one counts, an empty tail does not.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<int32_t> parse_ids(std::string_view line, std::size_t line_number, int vocab_size) {
  std::vector<int32_t> ids;
  const char* at = line.data();
  const char* end = line.data() + line.size();
  while (at != end) {
    if (*at == ' ' || *at == '\t' || *at == '\r') {
      ++at;
      continue;
    }
    int32_t id = 0;
    const auto [next, error] = std::from_chars(at, end, id);
    if (error != std::errc() || id < 0 || id >= vocab_size) {
      throw UsageError(fmt::format(
          "line {} of the input holds '{}', not a token id in [0, {}); --decode reads lines of "
          "space-separated ids as tessera tokenize writes them",
          line_number, std::string(at, std::min<std::size_t>(end - at, 20)), vocab_size));
    }
    ids.push_back(id);
    at = next;
  }
  return ids;
}

void write_ids(const std::vector<int32_t>& ids, std::string& out) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(ids[i]);
  }
  out += '\n';
}

void run(const TokenizeOptions& options) {
  if (options.decode && (options.no_special_tokens || options.document)) {
    throw UsageError("--decode reads ids; --no-special-tokens and --document are for encoding");
  }
  if (!options.decode && options.skip_special_tokens) {
    throw UsageError(
        "--skip-special-tokens is for --decode; to encode without them pass "
        "--no-special-tokens");
  }
  const std::unique_ptr<Tokenizer> tokenizer = open_tokenizer(options.tokenizer);
  const std::string text = read_input(options.input);
  const auto encode = [&](std::string_view piece) {
    return options.no_special_tokens ? tokenizer->encode_without_special_tokens(piece)
                                     : tokenizer->encode(piece);
  };
  std::string out;
  if (options.document) {
    write_ids(encode(text), out);
  } else {
    const std::vector<std::string_view> lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (options.decode) {
        const std::vector<int32_t> ids = parse_ids(lines[i], i + 1, tokenizer->vocab_size());
        out += options.skip_special_tokens ? tokenizer->decode_skipping_special_tokens(ids)
                                           : tokenizer->decode(ids);
        out += '\n';
      } else {
        write_ids(encode(lines[i]), out);
      }
    }
  }
  std::cout << out << std::flush;
}

}  // namespace

void add_tokenize_command(CLI::App& app, std::function<void()>& action) {
  auto* cmd = app.add_subcommand(
      "tokenize", "Encode text to token ids (one output line per input line), or --decode ids");
  auto options = std::make_shared<TokenizeOptions>();
  cmd->add_option("input", options->input, "Text to read ('-' or none: standard input)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", options->tokenizer,
                  "byte, sentencepiece:DIR/tokenizer.model or hf:PATH/tokenizer.json")
      ->required();
  cmd->add_flag("--decode", options->decode,
                "Read lines of space-separated ids and write their text, one line each");
  cmd->add_flag("--document", options->document,
                "Encode the whole input as one text, as tessera prepare encodes a file");
  cmd->add_flag("--no-special-tokens", options->no_special_tokens,
                "Leave out the special tokens the tokenizer puts around a text (<s>)");
  cmd->add_flag("--skip-special-tokens", options->skip_special_tokens,
                "With --decode: leave special tokens out of the text");
  cmd->callback([&action, options] { action = [options] { run(*options); }; });
}

}  // namespace tessera
