// Where the CPU backend puts its buffers: every one zeroed and cache-line aligned, and those of a
// 2 MiB page or more on a page boundary with transparent huge pages asked for (Debian's default
// THP mode gives them only to memory that asks; see src/backend/cpu/host_memory.hpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace tessera::test {
namespace {

constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;

/// The VmFlags line of the mapping in /proc/self/smaps that holds `address`, or "" if none does.
std::string mapping_flags(const void* address) {
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= target && target < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

TEST(CpuMemory, LargeBuffersStartOnAHugePageAskForItAndAreZeroed) {
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled")) {
    GTEST_SKIP() << "this kernel has no transparent huge pages; the backend only aligns";
  }
  const std::unique_ptr<Backend> backend = make_cpu_backend();
  // Just over 3 MiB: not a whole number of pages, so the rounding up is exercised too.
  const std::size_t count = (std::size_t{3} << 20) / sizeof(float) + 1;
  float* buffer = backend->allocate(count);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer) % kHugePage, 0u);
  EXPECT_NE(mapping_flags(buffer).find(" hg"), std::string::npos)
      << "no MADV_HUGEPAGE on the buffer's mapping: " << mapping_flags(buffer);
  std::vector<float> host(count, 1.0f);
  backend->copy_to_host(host.data(), buffer, count);
  for (float value : host) ASSERT_EQ(value, 0.0f);
  backend->release(buffer);
}

TEST(CpuMemory, SmallBuffersStayOnOrdinaryPages) {
  const std::unique_ptr<Backend> backend = make_cpu_backend();
  float* buffer = backend->allocate(1000);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer) % 64, 0u);
  EXPECT_EQ(mapping_flags(buffer).find(" hg"), std::string::npos)
      << "a 4 KB buffer need not pin a 2 MiB page";
  backend->release(buffer);
}

}  // namespace
}  // namespace tessera::test
