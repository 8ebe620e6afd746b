// Whole numbers read from JSON that outside hands wrote or may have damaged.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

namespace tessera {

/// `value` when it is a JSON integer in [lo, hi]; none otherwise. nlohmann's get<int> of a
/// float such as 5e23, or of an unsigned above the target's range, is an unchecked cast
/// (undefined behaviour), so a reader of files asks this first.
std::optional<int64_t> whole_number_in(const nlohmann::json& value, int64_t lo, int64_t hi);

}  // namespace tessera
