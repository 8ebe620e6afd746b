// libFuzzer harness: configuration text and --set values, the first line of the input being one
// override and the rest the TOML file. Bad input must be a UsageError, nothing else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "io/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string override_item = input.substr(0, newline);
  const std::string toml = newline == std::string::npos ? "" : input.substr(newline + 1);
  try {
    tessera::parse_config(toml, {});
  } catch (const tessera::UsageError&) {
  }
  try {
    tessera::parse_config(toml, {override_item});
  } catch (const tessera::UsageError&) {
  }
  return 0;
}
