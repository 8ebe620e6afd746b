// Hardware profiles: every shipped one parses and cites its sources; a profile with an unknown
// key, a missing one or a value out of range is one UsageError naming the file and the key;
// to_toml reads back to the same profile.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "plan/hardware_profile.hpp"

namespace tessera {
namespace {

const std::string kMinimal = R"(
backend = "cuda"
[node]
devices = 4
device_memory_gib = 40.0
[device]
peak_tflops = { fp32 = 19.5, bf16 = 312.0 }
achievable_tflops = { fp32 = 10.0, bf16 = 150.0 }
memory_bandwidth_gb_s = 1555.0
[network]
intra_node_gb_s = 300.0
inter_node_gb_s = 100.0
)";

std::string error_of(const std::string& text) {
  try {
    parse_hardware_profile(text, "test", "test.toml");
  } catch (const UsageError& error) {
    return error.what();
  }
  return "no error";
}

TEST(HardwareProfile, EveryShippedProfileParsesAndCitesItsSources) {
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TESSERA_HARDWARE_DIR)) {
    if (entry.path().extension() != ".toml") continue;
    SCOPED_TRACE(entry.path().string());
    const HardwareProfile profile =
        load_hardware_profile(entry.path().string(), hardware_search_path());
    EXPECT_FALSE(profile.sources.empty());
    EXPECT_FALSE(profile.description.empty());
    EXPECT_GT(profile.usable_bytes(), 0.0);
    // Model FLOPs count attention over the whole seq x seq (PaLM's convention) where causal
    // kernels compute half of it, so a calibrated rate can pass the GEMM peak by a few percent.
    EXPECT_LE(profile.achievable_tflops.fp32, 1.1 * profile.peak_tflops.fp32);
    EXPECT_LE(profile.achievable_tflops.bf16, 1.1 * profile.peak_tflops.bf16);
    ++found;
  }
  EXPECT_GE(found, 4);
  // By name, through the search path.
  EXPECT_EQ(load_hardware_profile("h100-sxm-ndr400x8", hardware_search_path()).devices_per_node, 8);
}

TEST(HardwareProfile, ReadsEveryKey) {
  const HardwareProfile profile = parse_hardware_profile(kMinimal, "test", "test.toml");
  EXPECT_EQ(profile.backend, BackendKind::cuda);
  EXPECT_EQ(profile.devices_per_node, 4);
  EXPECT_DOUBLE_EQ(profile.device_memory_bytes, 40.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(profile.achievable_tflops.of(Precision::bf16), 150.0);
  EXPECT_DOUBLE_EQ(profile.inter_node_gb_s, 100.0);
  EXPECT_EQ(profile.threads_per_device, 1);  // default
}

TEST(HardwareProfile, RefusesUnknownMissingAndOutOfRangeKeys) {
  EXPECT_NE(error_of(kMinimal + "[extra]\nx = 1\n").find("test.toml: extra is not a key"),
            std::string::npos);
  std::string typo = kMinimal;
  typo.replace(typo.find("intra_node_gb_s"), 15, "intra_node_gbs");
  EXPECT_NE(error_of(typo).find("network.intra_node_gbs is not a key"), std::string::npos);
  std::string missing = kMinimal;
  missing.replace(missing.find("devices = 4"), 11, "");
  EXPECT_NE(error_of(missing).find("node.devices is missing"), std::string::npos);
  std::string negative = kMinimal;
  negative.replace(negative.find("300.0"), 5, "-3.0");
  EXPECT_NE(error_of(negative).find("network.intra_node_gb_s must be a number"), std::string::npos);
  EXPECT_NE(error_of(kMinimal + "x = [").find("line"), std::string::npos);  // bad TOML
  std::string backend = kMinimal;
  backend.replace(backend.find("\"cuda\""), 6, "\"rocm\"");
  EXPECT_NE(error_of(backend).find("backend must be"), std::string::npos);
}

TEST(HardwareProfile, TomlReadsBackToTheSameProfile) {
  HardwareProfile profile = parse_hardware_profile(kMinimal, "test", "test.toml");
  profile.sources = {"a datasheet"};
  profile.block_overhead_us = 150.0;
  const HardwareProfile again = parse_hardware_profile(to_toml(profile), "test", "test.toml");
  EXPECT_EQ(again.sources, profile.sources);
  EXPECT_DOUBLE_EQ(again.device_memory_bytes, profile.device_memory_bytes);
  EXPECT_DOUBLE_EQ(again.block_overhead_us, 150.0);
  EXPECT_DOUBLE_EQ(again.achievable_tflops.fp32, 10.0);
}

}  // namespace
}  // namespace tessera
