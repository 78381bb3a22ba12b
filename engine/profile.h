// Where the time of a step goes, by backend primitive: while profiling is on, every kernel entry of the
// backend table (engine/backend.h) is timed on the host between a device synchronisation before and after it,
// so a GPU kernel's time is its own and not the next synchronising call's. Calls made from inside a timed entry
// count towards it. Profiling slows the work it measures (a synchronisation per call): benchmarks time their
// steps with it off and profile separate steps (`intl bench train --profile`).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace intl {

struct PrimitiveTime {
  std::string name;  // the table's slot ("conv2d_backward_filter", "gemm", ...)
  Device device = Device::cpu;
  int64_t calls = 0;
  double ms = 0;
  // The sizes of the calls' tensor arguments, each counted once: the least memory traffic the calls can have,
  // so bytes / time is a lower bound on the bandwidth a memory-bound primitive (elementwise, batch norm) drew.
  double bytes = 0;
};

// Turns profiling on or off; call between steps, never while kernels are being issued.
void set_backend_profiling(bool on);
void reset_backend_profile();
// Accumulated times since the last reset, the largest first.
std::vector<PrimitiveTime> backend_profile();

// The profile as an aligned table over `runs` runs (training steps, loss evaluations) whose wall time was
// `total_ms`: calls and milliseconds per run, share of the time, the operand bytes per second (GB/s), and the
// remainder outside the primitives (host work, launches).
std::string format_backend_profile(const std::vector<PrimitiveTime>& profile, int runs, double total_ms);

}  // namespace intl
