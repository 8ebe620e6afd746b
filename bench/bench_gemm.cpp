// The GEMM choice, measured: oneDNN's dnnl_sgemm (what tessera uses) next to OpenBLAS's
// cblas_sgemm, square fp32 products on all cores, best of several repetitions. Run it twice to
// see OpenBLAS with and without OPENBLAS_CORETYPE=SKYLAKEX (read when the library loads).
#include <cblas-openblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace {

double best_gflops(int n, const std::function<void()>& gemm) {
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    gemm();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) / seconds / 1e9);
  }
  return best;
}

}  // namespace

int main() {
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OPENBLAS_CORETYPE=%s, OpenBLAS core %s\n", coretype ? coretype : "(unset)",
              openblas_get_corename());
  for (int n : {512, 1024, 2048}) {
    std::vector<float> a(static_cast<std::size_t>(n) * n, 1.0f), b(a.size(), 0.5f), c(a.size());
    const double dnnl = best_gflops(n, [&] {
      dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    });
    const double openblas = best_gflops(n, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                  n, 0.0f, c.data(), n);
    });
    std::printf("n=%4d  dnnl_sgemm %6.1f GFLOP/s   openblas cblas_sgemm %6.1f GFLOP/s\n", n, dnnl,
                openblas);
  }
  return 0;
}
