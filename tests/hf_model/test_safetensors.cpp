// Safetensors files: what tessera writes reads back bitwise (F32) or rounded to nearest even
// (BF16, F16, checked over every 16-bit pattern), and each rule of the format, broken, is one
// UsageError naming the file and the rule.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/half_floats.hpp"
#include "io/hf_model/safetensors.hpp"
#include "tests/support/file_test_util.hpp"

namespace tessera {
namespace {

using testing::TempDir;
using testing::usage_error_message;

std::string safetensors_bytes(const nlohmann::json& header, const std::string& data) {
  const std::string text = header.dump();
  const uint64_t length = text.size();
  std::string bytes(reinterpret_cast<const char*>(&length), 8);
  return bytes + text + data;
}

TEST(Safetensors, WrittenTensorsReadBack) {
  TempDir dir;
  std::vector<float> a = {1.0f, -2.5f, 3.25f, 1e-30f, -0.0f, 65504.0f};
  std::vector<float> b = {0.1f, 0.2f, 0.3f, 0.4f};
  SafetensorsWriter writer(dir / "m.safetensors",
                           {{"a", {2, 3}, SafetensorsDtype::f32},
                            {"layers.0.b", {4}, SafetensorsDtype::bf16},
                            {"c", {2, 2}, SafetensorsDtype::f16},
                            {"empty", {0, 3}, SafetensorsDtype::f32}},
                           {{"format", "pt"}});
  writer.write(a);
  writer.write(b);
  writer.write(b);
  writer.write(std::vector<float>{});
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors")) << "only once finished";
  writer.finish();
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors.tmp"));

  const std::string bytes = testing::read_file(dir / "m.safetensors");
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  EXPECT_EQ((8 + header_length) % 8, 0u) << "the data starts 8-byte aligned";

  const SafetensorsReader reader(dir / "m.safetensors");
  EXPECT_EQ(reader.metadata().at("format"), "pt");
  ASSERT_EQ(reader.tensors().size(), 4u);
  const SafetensorsTensor* found_a = reader.find("a");
  ASSERT_NE(found_a, nullptr);
  EXPECT_EQ(found_a->shape, (std::vector<int64_t>{2, 3}));
  const std::vector<float> read_a = reader.read_floats(*found_a);
  EXPECT_EQ(std::memcmp(read_a.data(), a.data(), a.size() * 4), 0) << "F32 is bitwise";
  const std::vector<float> read_b = reader.read_floats(*reader.find("layers.0.b"));
  const std::vector<float> read_c = reader.read_floats(*reader.find("c"));
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(read_b[i], float_from_bf16(bf16_from_float(b[i])));
    EXPECT_EQ(read_c[i], float_from_f16(f16_from_float(b[i])));
  }
  EXPECT_TRUE(reader.read_floats(*reader.find("empty")).empty());
  EXPECT_EQ(reader.find("missing"), nullptr);
}

TEST(Safetensors, AnUnfinishedWriterLeavesNoFile) {
  TempDir dir;
  { SafetensorsWriter writer(dir / "m.safetensors", {{"a", {1}, SafetensorsDtype::f32}}, {}); }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors.tmp"));
}

// Every bf16 and f16 pattern widens and rounds back to itself (NaNs stay NaN), and rounding a
// float goes to the nearer of its two neighbours, ties to the even one (checked in double).
TEST(HalfFloats, EveryPatternRoundTripsAndRoundingIsToNearestEven) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const auto pattern = static_cast<uint16_t>(bits);
    const float widened_bf16 = float_from_bf16(pattern), widened_f16 = float_from_f16(pattern);
    if (std::isnan(widened_bf16)) {
      EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(widened_bf16))));
    } else {
      EXPECT_EQ(bf16_from_float(widened_bf16), pattern) << bits;
    }
    if (std::isnan(widened_f16)) {
      EXPECT_TRUE(std::isnan(float_from_f16(f16_from_float(widened_f16))));
    } else {
      EXPECT_EQ(f16_from_float(widened_f16), pattern) << bits;
    }
  }
  EXPECT_EQ(float_from_f16(0x0001), std::ldexp(1.0f, -24)) << "smallest subnormal";
  EXPECT_EQ(float_from_f16(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_from_float(65519.0f), 0x7BFF) << "below the midpoint to infinity";
  EXPECT_EQ(f16_from_float(65520.0f), 0x7C00) << "the midpoint rounds to even: infinity";
  EXPECT_EQ(f16_from_float(std::ldexp(1.0f, -25)), 0x0000) << "half the smallest: to even 0";
  EXPECT_EQ(f16_from_float(std::ldexp(3.0f, -25)), 0x0002) << "1.5 smallest: to even 2";
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float value = std::bit_cast<float>((state & 0x8FFFFFFFu) | 0x30000000u);
    for (const bool is_bf16 : {true, false}) {
      const uint16_t rounded = is_bf16 ? bf16_from_float(value) : f16_from_float(value);
      auto widen = [&](uint16_t p) {
        return static_cast<double>(is_bf16 ? float_from_bf16(p) : float_from_f16(p));
      };
      const double error = std::abs(widen(rounded) - value);
      // Its neighbours are no closer, and on a tie the kept pattern is even.
      for (const int step : {-1, 1}) {
        const auto neighbour = static_cast<uint16_t>(rounded + step);
        if ((neighbour & 0x7FFF) >= (is_bf16 ? 0x7F80 : 0x7C00)) continue;
        if (((neighbour ^ rounded) & 0x8000) != 0) continue;
        const double other = std::abs(widen(neighbour) - value);
        EXPECT_TRUE(error < other || (error == other && (rounded & 1) == 0))
            << value << (is_bf16 ? " bf16" : " f16");
      }
    }
  }
}

TEST(Safetensors, EachBrokenRuleIsNamed) {
  TempDir dir;
  const auto path = dir / "bad.safetensors";
  auto refusal = [&](const std::string& bytes) {
    testing::write_file(path, bytes);
    return usage_error_message([&] { SafetensorsReader reader(path); });
  };
  const nlohmann::json one = {{"w", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  const std::string eight(8, '\0');
  EXPECT_NO_THROW(SafetensorsReader([&] {
    testing::write_file(path, safetensors_bytes(one, eight));
    return path;
  }()));
  EXPECT_NE(refusal("abc").find("too short"), std::string::npos);
  std::string huge = safetensors_bytes(one, eight);
  huge[7] = 0x40;
  EXPECT_NE(refusal(huge).find("claims a header of"), std::string::npos);
  EXPECT_NE(refusal(safetensors_bytes(one, eight).substr(0, 20)).find("claims a header"),
            std::string::npos);
  EXPECT_NE(refusal(safetensors_bytes(nlohmann::json::array(), "")).find("not a JSON object"),
            std::string::npos);
  std::string twice =
      "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
      "\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}";
  const uint64_t twice_length = twice.size();
  EXPECT_NE(refusal(std::string(reinterpret_cast<const char*>(&twice_length), 8) + twice + eight)
                .find("names a tensor twice"),
            std::string::npos);
  nlohmann::json wrong = one;
  wrong["w"]["dtype"] = "F12";
  EXPECT_NE(refusal(safetensors_bytes(wrong, eight)).find("unknown dtype 'F12'"),
            std::string::npos);
  wrong = one;
  wrong["w"]["shape"] = {3};
  EXPECT_NE(refusal(safetensors_bytes(wrong, eight)).find("do not hold its shape"),
            std::string::npos);
  wrong = one;
  wrong["w"]["shape"] = {uint64_t{1} << 62, uint64_t{1} << 62};
  EXPECT_NE(refusal(safetensors_bytes(wrong, eight)).find("more elements than any file"),
            std::string::npos);
  wrong = one;
  wrong["w"]["data_offsets"] = {8, 0};
  EXPECT_NE(refusal(safetensors_bytes(wrong, eight)).find("do not hold"), std::string::npos);
  wrong = one;
  wrong["w"]["extra"] = 1;
  EXPECT_NE(refusal(safetensors_bytes(wrong, eight)).find("exactly the fields"), std::string::npos);
  nlohmann::json gap = {{"a", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}}},
                        {"b", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 12}}}}};
  EXPECT_NE(refusal(safetensors_bytes(gap, std::string(12, '\0'))).find("a hole or an overlap"),
            std::string::npos);
  EXPECT_NE(refusal(safetensors_bytes(one, std::string(12, '\0'))).find("bytes of data"),
            std::string::npos);
  nlohmann::json metadata = one;
  metadata["__metadata__"] = {{"format", 1}};
  EXPECT_NE(refusal(safetensors_bytes(metadata, eight)).find("__metadata__ 'format' not text"),
            std::string::npos);
  nlohmann::json integers = {{"ids", {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {0, 8}}}}};
  testing::write_file(path, safetensors_bytes(integers, eight));
  const SafetensorsReader reader(path);
  EXPECT_NE(usage_error_message([&] {
              reader.read_floats(reader.tensors()[0]);
            }).find("tensor 'ids' of " + path.string() + " is I64"),
            std::string::npos);
  EXPECT_NE(usage_error_message([&] {
              SafetensorsReader missing(dir / "none");
            }).find("cannot open safetensors file"),
            std::string::npos);
}

}  // namespace
}  // namespace tessera
