// The tokenizer a model was trained with, found again from what its checkpoint records: the
// tokenizer's id ("byte", "sentencepiece:<hash>", "hf:<hash>") and the run's data settings.
// Evaluation, generation and export turn text into the model's ids with it, so a file whose id
// differs (another vocabulary) is never taken.
#pragma once

#include <filesystem>
#include <string>

#include "io/config/config.hpp"

namespace tessera {

/// The tokenizer spec (tokenizer_spec.hpp) of the tokenizer with id `id`: "byte", or the file
/// `given` names (when not empty), else the first with that id of data.tokenizer's file and each
/// data source's copy (tokenizer.json, tokenizer.model). UsageError when the id is unknown or
/// absent ("synthetic" data has no text), or no candidate has it, saying what to pass.
std::string find_recorded_tokenizer(const std::string& id, const DataConfig& data,
                                    const std::filesystem::path& given);

}  // namespace tessera
