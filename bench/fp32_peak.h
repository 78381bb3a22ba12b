// The machine's FP32 peak, measured two ways so that benchmarks can print achieved GFLOP/s beside what the cores
// can do: independent FMA chains held in registers on every thread at once (the arithmetic ceiling), and
// OpenBLAS's sgemm at 2048^3 (what a kernel fed from memory reaches; on some machines about half the first).
#pragma once

namespace intl::bench {

// FP32 GFLOP/s of `threads` threads together (the best of three runs of about 0.1 s each); *isa names the FMA
// width used ("AVX-512" or "AVX2").
double measure_fp32_peak(int threads, const char** isa);

// GFLOP/s of cblas_sgemm on 2048 x 2048 float32 matrices with the OpenMP threads `intl` uses (the best of three).
double measure_sgemm_peak();

}  // namespace intl::bench
