// libFuzzer harness: a multiple-choice task file (JSON Lines) as `tessera eval --tasks` reads
// it. Every input must give questions whose answers index their choices, or a UsageError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.hpp"
#include "inference/choice_task.hpp"
#include "scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& file = tessera::fuzz::scratch_file("choice_task");
  tessera::fuzz::rewrite(file, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const tessera::ChoiceTask task = tessera::read_choice_task(file);
    for (const tessera::ChoiceQuestion& question : task.questions) {
      if (question.choices.size() < 2 || question.answer < 0 ||
          static_cast<std::size_t>(question.answer) >= question.choices.size()) {
        std::abort();  // the reader let through a question it must refuse
      }
    }
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
