// The machine's FP32 peak, measured: independent FMA chains held in registers on every thread at once, so that
// benchmarks can print achieved GFLOP/s beside what the cores can do.
#pragma once

namespace intl::bench {

// FP32 GFLOP/s of `threads` threads together (the best of three runs of about 0.1 s each); *isa names the FMA
// width used ("AVX-512" or "AVX2").
double measure_fp32_peak(int threads, const char** isa);

}  // namespace intl::bench
