#include "core/checksum.hpp"

namespace tessera {

uint64_t fnv1a64(std::span<const std::byte> bytes, uint64_t state) {
  constexpr uint64_t kPrime = 0x100000001B3ull;
  for (std::byte b : bytes) state = (state ^ static_cast<uint64_t>(b)) * kPrime;
  return state;
}

std::string to_hex16(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) hex[i] = kDigits[value & 0xF];
  return hex;
}

}  // namespace tessera
