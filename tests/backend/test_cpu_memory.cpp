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
#include "backend/memory_ledger.hpp"

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

TEST(MemoryLedger, TracksLiveBlocksGrowthAndThePeak) {
  MemoryLedger ledger;
  int a = 0, b = 0;
  ledger.set(&a, 100);
  ledger.set(&b, 50);
  EXPECT_EQ(ledger.current_bytes(), 150u);
  ledger.set(&a, 300);  // grown in place of the old size, not added to it
  EXPECT_EQ(ledger.current_bytes(), 350u);
  ledger.erase(&b);
  ledger.erase(&b);       // a second release of the same block changes nothing
  ledger.erase(nullptr);  // nor does one the ledger never saw
  EXPECT_EQ(ledger.current_bytes(), 300u);
  EXPECT_EQ(ledger.peak_bytes(), 350u);
}

TEST(CpuMemory, MemoryUseCountsBuffersAndKeepsTheirPeak) {
  const auto backend = make_cpu_backend();
  const MemoryUse before = backend->memory_use();
  float* big = backend->allocate(1 << 20);
  int32_t* tokens = backend->allocate_tokens(1000);
  const MemoryUse held = backend->memory_use();
  EXPECT_EQ(held.buffer_bytes - before.buffer_bytes, (4u << 20) + 4000u);
  backend->release(big);
  backend->release_tokens(tokens);
  const MemoryUse after = backend->memory_use();
  EXPECT_EQ(after.buffer_bytes, before.buffer_bytes);
  EXPECT_EQ(after.peak_buffer_bytes, held.buffer_bytes);
  // The process's peak resident set holds at least the 4 MiB buffer, which was zeroed (touched).
  EXPECT_GE(after.system_bytes, 4u << 20);
}

TEST(CpuMemory, DescribesTheProcessor) {
  const DeviceDescription device = make_cpu_backend()->describe_device();
  EXPECT_EQ(device.kind, "cpu");
  EXPECT_FALSE(device.name.empty());
  EXPECT_GT(device.memory_bytes, 0u);
  EXPECT_GE(device.compute_units, 1);
}

}  // namespace
}  // namespace tessera::test
