// FMA-loop peak measurement (see fp32_peak.h).
#include "bench/fp32_peak.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace intl::bench {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Peak: independent FMA chains held in registers, on every core at once.

// Twelve independent accumulators cover the FMA latency (4 cycles) times two FMA ports.
#define INTL_FMA12(fma)                                                                                    \
  a0 = fma(a0, m, c), a1 = fma(a1, m, c), a2 = fma(a2, m, c), a3 = fma(a3, m, c), a4 = fma(a4, m, c),     \
  a5 = fma(a5, m, c), a6 = fma(a6, m, c), a7 = fma(a7, m, c), a8 = fma(a8, m, c), a9 = fma(a9, m, c),     \
  a10 = fma(a10, m, c), a11 = fma(a11, m, c)

__attribute__((target("avx512f"))) double fma_loop_avx512(long iters) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  __m512 a0 = m, a1 = m, a2 = m, a3 = m, a4 = m, a5 = m, a6 = m, a7 = m, a8 = m, a9 = m, a10 = m, a11 = m;
  for (long i = 0; i < iters; ++i) INTL_FMA12(_mm512_fmadd_ps);
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                 _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)),
                                               _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11))));
  float v[16];
  _mm512_storeu_ps(v, s);
  return v[0];
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iters) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  __m256 a0 = m, a1 = m, a2 = m, a3 = m, a4 = m, a5 = m, a6 = m, a7 = m, a8 = m, a9 = m, a10 = m, a11 = m;
  for (long i = 0; i < iters; ++i) INTL_FMA12(_mm256_fmadd_ps);
  const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                               _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
  float v[8];
  _mm256_storeu_ps(v, s);
  return v[0];
}
#undef INTL_FMA12

}  // namespace

double measure_fp32_peak(int threads, const char** isa) {
  const bool wide = __builtin_cpu_supports("avx512f");
  *isa = wide ? "AVX-512" : "AVX2";
  const int lanes = wide ? 16 : 8;
  const long iters = wide ? 40000000 : 80000000;
  double best = 0, sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += wide ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    best = std::max(best, 2.0 * lanes * 12 * double(iters) * threads / seconds_since(t0) / 1e9);
  }
  if (sink == 42.0) std::printf(" ");  // keeps the loops alive
  return best;
}

double measure_sgemm_peak() {
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    best = std::max(best, 2.0 * n * n * double(n) / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace intl::bench
