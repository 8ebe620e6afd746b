#include "core/json_numbers.hpp"

namespace tessera {

std::optional<int64_t> whole_number_in(const nlohmann::json& value, int64_t lo, int64_t hi) {
  if (!value.is_number_integer()) return std::nullopt;
  if (value.is_number_unsigned()) {  // may exceed int64_t
    const auto number = value.get<uint64_t>();
    if (hi < 0 || number > static_cast<uint64_t>(hi) || static_cast<int64_t>(number) < lo) {
      return std::nullopt;
    }
    return static_cast<int64_t>(number);
  }
  const auto number = value.get<int64_t>();
  if (number < lo || number > hi) return std::nullopt;
  return number;
}

}  // namespace tessera
