#include "calibrate/hardware_profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <vector>

#include "calibrate/timing.hpp"
#include "core/error.hpp"
#include "core/host_facts.hpp"

namespace tessera {
namespace {

using calibration::seconds_per_call;

/// A backend buffer of `count` floats holding pseudo-random values in [-1, 1): zeros would let
/// some GPUs' tensor cores draw less power and clock higher than on real data.
class RandomBuffer {
 public:
  RandomBuffer(Backend& backend, std::size_t count) : backend_(backend) {
    data_ = backend.allocate(count);
    std::vector<float> block(std::min<std::size_t>(count, std::size_t{1} << 20));
    uint32_t state = 12345;
    for (float& value : block) {
      state = state * 1664525u + 1013904223u;
      value = static_cast<float>(state >> 8) / static_cast<float>(1u << 23) - 1.0f;
    }
    for (std::size_t begin = 0; begin < count; begin += block.size()) {
      backend.copy_from_host(data_ + begin, block.data(), std::min(block.size(), count - begin));
    }
  }
  ~RandomBuffer() { backend_.release(data_); }
  RandomBuffer(const RandomBuffer&) = delete;
  RandomBuffer& operator=(const RandomBuffer&) = delete;
  float* get() const { return data_; }

 private:
  Backend& backend_;
  float* data_;
};

struct LinearClass {
  std::string name;
  int in_features, out_features;
};

/// The linear layers of one block of width d, and the vocabulary head.
std::vector<LinearClass> linear_classes(int d, int vocab) {
  return {{"qkv", d, 3 * d},
          {"attn_out", d, d},
          {"mlp_up", d, 4 * d},
          {"mlp_down", 4 * d, d},
          {"head", d, vocab}};
}

nlohmann::json measure_linear(Backend& backend, const std::string& precision, int d,
                              const LinearClass& layer, const CalibrationOptions& options) {
  const std::size_t rows = static_cast<std::size_t>(options.tokens);
  const std::size_t in = layer.in_features, out = layer.out_features;
  RandomBuffer input(backend, rows * in), weight(backend, out * in), d_out(backend, rows * out);
  RandomBuffer output(backend, rows * out), d_in(backend, rows * in), d_weight(backend, out * in);
  const int r = options.tokens, i = layer.in_features, o = layer.out_features;
  const double forward_s = seconds_per_call(backend, output.get(), options.min_seconds, [&] {
    backend.linear_forward(output.get(), input.get(), weight.get(), nullptr, r, i, o);
  });
  const double backward_s = seconds_per_call(backend, d_in.get(), options.min_seconds, [&] {
    backend.linear_backward(d_in.get(), d_weight.get(), nullptr, d_out.get(), input.get(),
                            weight.get(), r, i, o);
  });
  const double flops = 2.0 * static_cast<double>(rows) * static_cast<double>(in * out);
  return {{"class", fmt::format("d{}.{}", d, layer.name)},
          {"precision", precision},
          {"rows", r},
          {"in_features", i},
          {"out_features", o},
          {"forward_tflops", flops / forward_s / 1e12},
          {"backward_tflops", 2.0 * flops / backward_s / 1e12}};
}

nlohmann::json measure_attention(Backend& backend, const std::string& precision,
                                 const AttentionClass& problem, const CalibrationOptions& options) {
  AttentionShape shape;
  shape.seq = problem.seq;
  shape.batch = std::max(1, options.tokens / problem.seq);
  shape.n_heads = problem.n_heads;
  shape.head_dim = problem.head_dim;
  const std::size_t tokens = static_cast<std::size_t>(shape.batch) * shape.seq;
  const std::size_t width = static_cast<std::size_t>(shape.n_heads) * shape.head_dim;
  RandomBuffer qkv(backend, tokens * 3 * width), d_out(backend, tokens * width);
  RandomBuffer out(backend, tokens * width), d_qkv(backend, tokens * 3 * width);
  RandomBuffer state(backend, backend.attention_state_count(shape));
  const double forward_s = seconds_per_call(backend, out.get(), options.min_seconds, [&] {
    backend.attention_forward(out.get(), state.get(), qkv.get(), shape);
  });
  const double backward_s = seconds_per_call(backend, d_qkv.get(), options.min_seconds, [&] {
    backend.attention_backward(d_qkv.get(), d_out.get(), qkv.get(), out.get(), state.get(), shape);
  });
  // Q K^T and P V, 2 B H S^2 D each, halved by the causal mask; backward counted as 2.5 times
  // forward (dQ, dK, dV, dP and the recomputed scores), as FlashAttention's benchmarks count it.
  const double forward_flops = 2.0 * shape.batch * shape.n_heads * static_cast<double>(shape.seq) *
                               shape.seq * shape.head_dim;
  return {{"precision", precision},
          {"batch", shape.batch},
          {"seq", shape.seq},
          {"n_heads", shape.n_heads},
          {"head_dim", shape.head_dim},
          {"forward_tflops", forward_flops / forward_s / 1e12},
          {"backward_tflops", 2.5 * forward_flops / backward_s / 1e12}};
}

/// Pageable host memory, as checkpoints gather into (std::vector), both ways.
nlohmann::json measure_copies(Backend& backend, const CalibrationOptions& options) {
  const std::size_t count = options.copy_bytes / sizeof(float);
  RandomBuffer device(backend, count);
  std::vector<float> host(count, 1.0f);
  const double to_host_s = seconds_per_call(backend, device.get(), options.min_seconds, [&] {
    backend.copy_to_host(host.data(), device.get(), count);
  });
  const double from_host_s = seconds_per_call(backend, device.get(), options.min_seconds, [&] {
    backend.copy_from_host(device.get(), host.data(), count);
  });
  const double bytes = static_cast<double>(count * sizeof(float));
  return {{"bytes", bytes},
          {"host_memory", "pageable"},
          {"device_to_host_gb_s", bytes / to_host_s / 1e9},
          {"host_to_device_gb_s", bytes / from_host_s / 1e9}};
}

void check_options(const CalibrationOptions& options) {
  auto positive = [](int value) { return value > 0; };
  if (options.tokens <= 0 || options.vocab <= 0 || options.d_models.empty() ||
      !std::all_of(options.d_models.begin(), options.d_models.end(), positive)) {
    throw UsageError(
        "calibration needs positive --tokens, --vocab and --d-models; pass e.g. "
        "--tokens 8192 --vocab 50304 --d-models 768,2048");
  }
  for (const AttentionClass& problem : options.attention) {
    if (problem.seq <= 0 || problem.n_heads <= 0 || problem.head_dim <= 0) {
      throw UsageError(fmt::format(
          "attention class {}x{}x{} is not SEQxHEADSxHEAD_DIM with positive sizes; pass e.g. "
          "--attention 1024x12x64",
          problem.seq, problem.n_heads, problem.head_dim));
    }
  }
}

}  // namespace

nlohmann::json calibrate_device(const std::vector<std::pair<std::string, Backend*>>& backends,
                                const CalibrationOptions& options,
                                const std::function<void(const std::string&)>& progress) {
  check_options(options);
  TESSERA_CHECK(!backends.empty(), "calibrate_device needs at least one backend");
  const auto start = std::chrono::steady_clock::now();
  Backend& first = *backends.front().second;
  const DeviceDescription device = first.describe_device();
  nlohmann::json profile = {{"format", "tessera-hardware-profile"},
                            {"version", 1},
                            {"created", utc_text(static_cast<double>(std::time(nullptr)))},
                            {"tessera", TESSERA_VERSION},
                            {"host", host_name()},
                            {"device",
                             {{"backend", std::string(first.name())},
                              {"kind", device.kind},
                              {"name", device.name},
                              {"driver", device.driver},
                              {"memory_bytes", device.memory_bytes},
                              {"compute_units", device.compute_units}}},
                            {"tokens", options.tokens},
                            {"gemm", nlohmann::json::array()},
                            {"attention", nlohmann::json::array()}};
  for (const auto& [precision, backend] : backends) {
    for (int d : options.d_models) {
      for (const LinearClass& layer : linear_classes(d, options.vocab)) {
        nlohmann::json row = measure_linear(*backend, precision, d, layer, options);
        progress(fmt::format("gemm {} {}: forward {:.3g} TFLOP/s, backward {:.3g} TFLOP/s",
                             row["class"].get<std::string>(), precision,
                             row["forward_tflops"].get<double>(),
                             row["backward_tflops"].get<double>()));
        profile["gemm"].push_back(std::move(row));
      }
    }
    for (const AttentionClass& problem : options.attention) {
      nlohmann::json row = measure_attention(*backend, precision, problem, options);
      progress(
          fmt::format("attention seq {} heads {} head_dim {} {}: forward {:.3g} TFLOP/s, "
                      "backward {:.3g} TFLOP/s",
                      problem.seq, problem.n_heads, problem.head_dim, precision,
                      row["forward_tflops"].get<double>(), row["backward_tflops"].get<double>()));
      profile["attention"].push_back(std::move(row));
    }
  }
  profile["copy"] = measure_copies(first, options);
  progress(
      fmt::format("copies of {:.0f} MiB, pageable host memory: device to host {:.1f} GB/s, "
                  "host to device {:.1f} GB/s",
                  profile["copy"]["bytes"].get<double>() / (1 << 20),
                  profile["copy"]["device_to_host_gb_s"].get<double>(),
                  profile["copy"]["host_to_device_gb_s"].get<double>()));
  profile["elapsed_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return profile;
}

std::string describe_profile(const nlohmann::json& profile) {
  const nlohmann::json& device = profile.at("device");
  std::string text = fmt::format(
      "{} ({}; {} compute units, {:.1f} GiB), tessera {}, {}\n\n",
      device.at("name").get<std::string>(),
      device.at("driver").get<std::string>().empty() ? device.at("backend").get<std::string>()
                                                     : device.at("driver").get<std::string>(),
      device.at("compute_units").get<int>(), device.at("memory_bytes").get<double>() / (1 << 30),
      profile.at("tessera").get<std::string>(), profile.at("created").get<std::string>());
  text +=
      "| GEMM class | precision | rows x in -> out | forward TFLOP/s | backward TFLOP/s |\n"
      "|---|---|---|---|---|\n";
  for (const nlohmann::json& row : profile.at("gemm")) {
    text += fmt::format("| {} | {} | {} x {} -> {} | {:.3g} | {:.3g} |\n",
                        row.at("class").get<std::string>(), row.at("precision").get<std::string>(),
                        row.at("rows").get<int>(), row.at("in_features").get<int>(),
                        row.at("out_features").get<int>(), row.at("forward_tflops").get<double>(),
                        row.at("backward_tflops").get<double>());
  }
  text +=
      "\n| attention (causal) | precision | batch x seq, heads x head_dim | forward TFLOP/s | "
      "backward TFLOP/s |\n|---|---|---|---|---|\n";
  for (const nlohmann::json& row : profile.at("attention")) {
    text += fmt::format(
        "| seq {} | {} | {} x {}, {} x {} | {:.3g} | {:.3g} |\n", row.at("seq").get<int>(),
        row.at("precision").get<std::string>(), row.at("batch").get<int>(),
        row.at("seq").get<int>(), row.at("n_heads").get<int>(), row.at("head_dim").get<int>(),
        row.at("forward_tflops").get<double>(), row.at("backward_tflops").get<double>());
  }
  const nlohmann::json& copy = profile.at("copy");
  text += fmt::format(
      "\nCopies of {:.0f} MiB through pageable host memory: device to host {:.1f} GB/s, host to "
      "device {:.1f} GB/s.\n",
      copy.at("bytes").get<double>() / (1 << 20), copy.at("device_to_host_gb_s").get<double>(),
      copy.at("host_to_device_gb_s").get<double>());
  return text;
}

}  // namespace tessera
