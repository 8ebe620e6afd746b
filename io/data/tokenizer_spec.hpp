// Tokenizers named the way configuration and the command line name them:
//   byte                        the built-in byte tokenizer
//   sentencepiece:MODEL_FILE    a model written by tessera prepare (DIR/tokenizer.model)
//   hf:TOKENIZER_JSON           a Hugging Face tokenizer.json
#pragma once

#include <memory>
#include <string_view>

#include "io/data/tokenizer.hpp"

namespace tessera {

/// The tokenizer `spec` names, loaded. UsageError for another form or a file that does not load.
std::unique_ptr<Tokenizer> open_tokenizer(std::string_view spec);

/// The file part of "hf:PATH" or "sentencepiece:PATH"; empty for "byte" or a bare kind.
std::string_view tokenizer_spec_file(std::string_view spec);

}  // namespace tessera
