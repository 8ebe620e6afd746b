// Layout-independent parameter initialisation.
#pragma once

#include <cstdint>

#include "model/parameters.hpp"

namespace tessera {

/// Fills `out` (the local block of `info`, row-major over its local shape) with the values the
/// whole tensor would have at those global positions: element g of parameter `name` is drawn
/// from Philox keyed by (seed, hash(name), g), so any split of the tensor gets the same numbers.
void fill_parameter_block(const ParameterInfo& info, uint64_t seed, float* out);

/// Standard-normal value for (seed, stream, index), from Philox4x32-10 and Box-Muller.
float counter_normal(uint64_t seed, uint64_t stream, uint64_t index);

/// 64-bit FNV-1a hash of a parameter name: the stream id of that parameter.
uint64_t name_stream(const std::string& name);

}  // namespace tessera
