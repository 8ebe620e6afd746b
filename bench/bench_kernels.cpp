// Micro-benchmarks of the CPU backend's kernels at the shapes of the bench-cpu model
// (rows = batch * seq = 2048, d_model = 384, d_ff = 1536, vocab = 8192, 6 heads of 64).
// GEMM-bound kernels report GFLOP/s; memory-bound ones report bytes/s.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "train/backend_choice.hpp"

namespace {

using tessera::Backend;

/// A backend buffer filled with uniform [-1, 1) values, released on scope exit.
class Buffer {
 public:
  Buffer(Backend& backend, std::size_t count, unsigned seed = 1)
      : backend_(backend), data_(backend.allocate(count)) {
    std::vector<float> host(count);
    std::mt19937 engine(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (float& value : host) value = uniform(engine);
    backend.copy_from_host(data_, host.data(), count);
  }
  ~Buffer() { backend_.release(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* get() { return data_; }

 private:
  Backend& backend_;
  float* data_;
};

void set_gflops(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Arguments: rows, in_features, out_features.
void BM_LinearForward(benchmark::State& state, Backend& backend) {
  const int rows = static_cast<int>(state.range(0));
  const int in = static_cast<int>(state.range(1)), out = static_cast<int>(state.range(2));
  Buffer x(backend, static_cast<std::size_t>(rows) * in),
      w(backend, static_cast<std::size_t>(out) * in);
  Buffer bias(backend, out), y(backend, static_cast<std::size_t>(rows) * out);
  for (auto _ : state) {
    backend.linear_forward(y.get(), x.get(), w.get(), bias.get(), rows, in, out);
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2.0 * rows * in * out);
}

void BM_LinearBackward(benchmark::State& state, Backend& backend) {
  const int rows = static_cast<int>(state.range(0));
  const int in = static_cast<int>(state.range(1)), out = static_cast<int>(state.range(2));
  Buffer x(backend, static_cast<std::size_t>(rows) * in),
      w(backend, static_cast<std::size_t>(out) * in);
  Buffer dy(backend, static_cast<std::size_t>(rows) * out),
      dx(backend, static_cast<std::size_t>(rows) * in);
  Buffer dw(backend, static_cast<std::size_t>(out) * in), db(backend, out);
  for (auto _ : state) {
    backend.linear_backward(dx.get(), dw.get(), db.get(), dy.get(), x.get(), w.get(), rows, in,
                            out);
    benchmark::ClobberMemory();
  }
  set_gflops(state, 4.0 * rows * in * out);
}

#define LINEAR_SHAPES                 \
  Args({2048, 384, 1152})             \
      ->Args({2048, 384, 1536})       \
      ->Args({2048, 1536, 384})       \
      ->Args({2048, 384, 8192})       \
      ->Unit(benchmark::kMillisecond) \
      ->UseRealTime()

constexpr tessera::AttentionShape kAttention{8, 256, 6, 64};

std::size_t qkv_count() {
  return static_cast<std::size_t>(kAttention.batch) * kAttention.seq * 3 * kAttention.n_heads *
         kAttention.head_dim;
}
std::size_t probs_count() {
  return static_cast<std::size_t>(kAttention.batch) * kAttention.n_heads * kAttention.seq *
         kAttention.seq;
}
/// FLOPs of one (seq x seq x head_dim) GEMM over all batches and heads.
double attention_gemm_flops() {
  return 2.0 * kAttention.batch * kAttention.n_heads * kAttention.seq * kAttention.seq *
         kAttention.head_dim;
}

void BM_AttentionForward(benchmark::State& state, Backend& backend) {
  Buffer qkv(backend, qkv_count()), out(backend, qkv_count() / 3), probs(backend, probs_count());
  for (auto _ : state) {
    backend.attention_forward(out.get(), probs.get(), qkv.get(), kAttention);
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2 * attention_gemm_flops());
}

void BM_AttentionBackward(benchmark::State& state, Backend& backend) {
  Buffer qkv(backend, qkv_count()), out(backend, qkv_count() / 3), probs(backend, probs_count());
  Buffer d_out(backend, qkv_count() / 3), d_qkv(backend, qkv_count());
  backend.attention_forward(out.get(), probs.get(), qkv.get(), kAttention);
  for (auto _ : state) {
    backend.attention_backward(d_qkv.get(), d_out.get(), qkv.get(), out.get(), probs.get(),
                               kAttention);
    benchmark::ClobberMemory();
  }
  set_gflops(state, 4 * attention_gemm_flops());
}

constexpr int kNormRows = 2048, kNormDim = 384;

void BM_LayerNormForward(benchmark::State& state, Backend& backend) {
  const std::size_t count = static_cast<std::size_t>(kNormRows) * kNormDim;
  Buffer in(backend, count), out(backend, count), gain(backend, kNormDim), bias(backend, kNormDim);
  Buffer mean(backend, kNormRows), rstd(backend, kNormRows);
  for (auto _ : state) {
    backend.layernorm_forward(out.get(), mean.get(), rstd.get(), in.get(), gain.get(), bias.get(),
                              kNormRows, kNormDim, 1e-5f);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(2 * count * sizeof(float)));
}

void BM_LayerNormBackward(benchmark::State& state, Backend& backend) {
  const std::size_t count = static_cast<std::size_t>(kNormRows) * kNormDim;
  Buffer in(backend, count), out(backend, count), gain(backend, kNormDim), bias(backend, kNormDim);
  Buffer mean(backend, kNormRows), rstd(backend, kNormRows), d_out(backend, count);
  Buffer d_in(backend, count), d_gain(backend, kNormDim), d_bias(backend, kNormDim);
  backend.layernorm_forward(out.get(), mean.get(), rstd.get(), in.get(), gain.get(), bias.get(),
                            kNormRows, kNormDim, 1e-5f);
  for (auto _ : state) {
    backend.layernorm_backward(d_in.get(), d_gain.get(), d_bias.get(), d_out.get(), in.get(),
                               gain.get(), mean.get(), rstd.get(), kNormRows, kNormDim);
    benchmark::ClobberMemory();
  }
  // Reads in and d_out twice (row pass and column pass), writes d_in.
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(5 * count * sizeof(float)));
}

constexpr int kLossRows = 2048, kVocab = 8192;

// The vocabulary softmax fused with its gradient: reads the logits, writes the gradient in place.
void BM_SoftmaxCrossEntropy(benchmark::State& state, Backend& backend) {
  const std::size_t count = static_cast<std::size_t>(kLossRows) * kVocab;
  Buffer logits(backend, count), losses(backend, kLossRows), d_logits(backend, count);
  std::vector<int32_t> host_targets(kLossRows);
  for (int r = 0; r < kLossRows; ++r) host_targets[r] = (r * 7919) % kVocab;
  int32_t* targets = backend.allocate_tokens(kLossRows);
  backend.copy_tokens_from_host(targets, host_targets.data(), kLossRows);
  for (auto _ : state) {
    backend.softmax_cross_entropy(losses.get(), d_logits.get(), logits.get(), targets, kLossRows,
                                  kVocab, 1e-4f, 1.0f);
    benchmark::ClobberMemory();
  }
  backend.release_tokens(targets);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(2 * count * sizeof(float)));
}

constexpr std::size_t kGeluCount = 2048 * 1536;

void BM_GeluForward(benchmark::State& state, Backend& backend) {
  Buffer in(backend, kGeluCount), out(backend, kGeluCount);
  for (auto _ : state) {
    backend.gelu_forward(out.get(), in.get(), kGeluCount);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(2 * kGeluCount * sizeof(float)));
}

constexpr std::size_t kParameters = 1 << 22;

// Memory-bound: reads parameter, gradient and both moments, writes parameter and moments.
void BM_AdamW(benchmark::State& state, Backend& backend) {
  Buffer param(backend, kParameters), grad(backend, kParameters), m(backend, kParameters),
      v(backend, kParameters, 2);
  backend.scale(v.get(), 0.0f, kParameters);  // second moments must not be negative
  int step = 0;
  for (auto _ : state) {
    backend.adamw_update(param.get(), grad.get(), m.get(), v.get(), {{0, kParameters, 0.1f}},
                         {1e-4f, 0.9f, 0.95f, 1e-8f, ++step});
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(7 * kParameters * sizeof(float)));
}

void register_benchmarks(Backend& backend) {
  benchmark::RegisterBenchmark("BM_LinearForward", BM_LinearForward, std::ref(backend))
      ->LINEAR_SHAPES;
  benchmark::RegisterBenchmark("BM_LinearBackward", BM_LinearBackward, std::ref(backend))
      ->LINEAR_SHAPES;
  benchmark::RegisterBenchmark("BM_AttentionForward", BM_AttentionForward, std::ref(backend))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_AttentionBackward", BM_AttentionBackward, std::ref(backend))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_LayerNormForward", BM_LayerNormForward, std::ref(backend))
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_LayerNormBackward", BM_LayerNormBackward, std::ref(backend))
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_SoftmaxCrossEntropy", BM_SoftmaxCrossEntropy, std::ref(backend))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_GeluForward", BM_GeluForward, std::ref(backend))
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_AdamW", BM_AdamW, std::ref(backend))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  // --backend=NAME is ours; the remaining arguments are Google Benchmark's.
  tessera::BackendKind kind = tessera::BackendKind::cpu;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--backend=cpu") {
      kind = tessera::BackendKind::cpu;
    } else if (arg == "--backend=kokkos") {
      kind = tessera::BackendKind::kokkos;
    } else if (arg.rfind("--backend", 0) == 0) {
      std::fprintf(stderr, "bench_kernels: unknown %s; use --backend=cpu or --backend=kokkos\n",
                   arg.c_str());
      return 2;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  std::unique_ptr<Backend> backend;
  try {
    backend = tessera::make_device_backend(kind, tessera::Precision::fp32);
  } catch (const tessera::UsageError& error) {
    std::fprintf(stderr, "bench_kernels: %s\n", error.what());
    return 2;
  }
  const tessera::DeviceDescription device = backend->describe_device();
  benchmark::AddCustomContext("backend", device.kind + " (" + device.name + ")");
  register_benchmarks(*backend);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
