// Benchmark timing: warm-up, then repeated runs until both a minimum count and a time budget are reached;
// the median is reported (these machines are shared and noisy).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/profile.h"

namespace intl::bench {

struct Timing {
  double median_ms = 0, min_ms = 0;
  int reps = 0;
};

inline Timing time_median(const std::function<void()>& fn, int warmup, int min_reps, double budget_s) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  while (int(ms.size()) < min_reps || (elapsed() < budget_s && ms.size() < 10000)) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), int(ms.size())};
}

// The first field of /proc/loadavg, or "?" where there is none (printed beside timings on shared machines).
inline std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "?";
  char buf[32] = {0};
  const int got = std::fscanf(f, "%31s", buf);
  std::fclose(f);
  return got == 1 ? buf : "?";
}

// --profile N of the benchmarks: N more runs of `fn` with the backend profiler on, then the table of where
// their time went (engine/profile.h), headed by the profiled and unprofiled times per run.
inline void print_profile(const std::function<void()>& fn, int runs, double unprofiled_ms) {
  if (runs <= 0) return;
  reset_backend_profile();
  set_backend_profiling(true);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    for (int i = 0; i < runs; ++i) fn();
  } catch (...) {
    set_backend_profiling(false);
    throw;
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  set_backend_profiling(false);
  std::printf("profile: %d more run%s with every backend primitive synchronised and timed (%.2f ms per run against "
              "%.2f unprofiled)\n%s",
              runs, runs == 1 ? "" : "s", ms / runs, unprofiled_ms,
              format_backend_profile(backend_profile(), runs, ms).c_str());
}

}  // namespace intl::bench
