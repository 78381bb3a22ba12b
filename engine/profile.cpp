// The timed backend tables: one per device, each entry a wrapper that synchronises, times the device's own
// entry and adds the time to that slot's counter. The wrappers are generated from pointers to the table's
// members, so a new slot needs one entry in INTL_TIMED_SLOTS below and nothing else.
#include "engine/profile.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <type_traits>

#include "engine/backend.h"

namespace intl {

namespace detail {
std::atomic<bool> g_profiling{false};
}

namespace {

constexpr int kMaxSlots = 32;

struct Counters {
  std::mutex mutex;
  std::array<const char*, kMaxSlots> names{};
  std::array<int64_t, kMaxSlots> calls[2]{};
  std::array<double, kMaxSlots> ms[2]{};
  std::array<double, kMaxSlots> bytes[2]{};
};

Counters& counters() {
  static Counters* c = new Counters();  // never destroyed: kernels may run during static destruction
  return *c;
}

thread_local int t_depth = 0;  // > 0 inside a timed entry: nested calls are part of it

const Backend& device_table(Device d) { return d == Device::cpu ? cpu_backend() : cuda_backend(); }

void record(Device d, int slot, std::chrono::steady_clock::time_point t0, double bytes) {
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.calls[int(d)][size_t(slot)]++;
  c.ms[int(d)][size_t(slot)] += ms;
  c.bytes[int(d)][size_t(slot)] += bytes;
}

// An argument's share of a call's operand bytes: a tensor's size, nothing for anything else.
double operand_bytes(const Tensor& t) { return t.defined() ? double(t.numel()) * double(dtype_size(t.dtype())) : 0.0; }
double operand_bytes(const GemmArgs& g) {  // a (m x k), b (k x n), c (m x n) per batch entry
  return double(g.batch) * double(g.m * g.k + g.k * g.n + g.m * g.n) * double(dtype_size(g.dtype));
}
double operand_bytes(const std::vector<SgdParam>& params) {
  double bytes = 0;
  for (const SgdParam& p : params) bytes += operand_bytes(p.param) + operand_bytes(p.grad) + operand_bytes(p.momentum);
  return bytes;
}
template <class T> double operand_bytes(const T&) { return 0.0; }

// Times one call of slot `Slot` of `D`'s table. The synchronisation after the call is on the normal path, so
// an asynchronous GPU fault surfaces here, in the primitive that caused it; a call that throws is not counted.
template <Device D, int Slot, auto Member> struct Timed;
template <Device D, int Slot, class R, class... A, R (*Backend::*Member)(A...)> struct Timed<D, Slot, Member> {
  static R call(A... args) {
    const Backend& inner = device_table(D);
    if (t_depth > 0) return (inner.*Member)(args...);
    inner.synchronize();
    struct Depth {
      Depth() { ++t_depth; }
      ~Depth() { --t_depth; }
    } depth;
    const double bytes = (0.0 + ... + operand_bytes(args));
    const auto t0 = std::chrono::steady_clock::now();
    if constexpr (std::is_void_v<R>) {
      (inner.*Member)(args...);
      inner.synchronize();
      record(D, Slot, t0, bytes);
    } else {
      R result = (inner.*Member)(args...);
      inner.synchronize();
      record(D, Slot, t0, bytes);
      return result;
    }
  }
};

// Every kernel entry of the table; alloc, free and synchronize pass through untimed.
#define INTL_TIMED_SLOTS(X)                                                                                     \
  X(0, copy) X(1, fill) X(2, random) X(3, unary) X(4, binary) X(5, reduce_sum) X(6, gemm) X(7, eigh)            \
  X(8, cholesky) X(9, trsm_lower) X(10, batchnorm_forward_train) X(11, batchnorm_backward_train)                \
  X(12, conv2d_forward) X(13, conv2d_backward_data) X(14, conv2d_backward_filter) X(15, maxpool2d_forward)      \
  X(16, maxpool2d_backward) X(17, batchnorm2d_forward) X(18, batchnorm2d_backward) X(19, softmax_xent)          \
  X(20, sgd_step) X(21, adam_step)

template <Device D> Backend make_timed() {
  Backend t = device_table(D);
#define INTL_WRAP(i, slot) \
  if (t.slot) t.slot = &Timed<D, i, &Backend::slot>::call;
  INTL_TIMED_SLOTS(INTL_WRAP)
#undef INTL_WRAP
  return t;
}

void name_slots() {
  Counters& c = counters();
#define INTL_NAME(i, slot) c.names[i] = #slot;
  INTL_TIMED_SLOTS(INTL_NAME)
#undef INTL_NAME
}

}  // namespace

const Backend& profiled_backend(Device device) {
  if (device == Device::cpu) {
    static const Backend cpu = make_timed<Device::cpu>();
    return cpu;
  }
  static const Backend cuda = make_timed<Device::cuda>();
  return cuda;
}

void set_backend_profiling(bool on) {
  static std::once_flag named;
  std::call_once(named, name_slots);
  detail::g_profiling = on;
}

void reset_backend_profile() {
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (int d = 0; d < 2; ++d) {
    c.calls[d].fill(0);
    c.ms[d].fill(0);
    c.bytes[d].fill(0);
  }
}

std::vector<PrimitiveTime> backend_profile() {
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::vector<PrimitiveTime> out;
  for (int d = 0; d < 2; ++d)
    for (int i = 0; i < kMaxSlots; ++i)
      if (c.calls[d][size_t(i)] > 0)
        out.push_back({c.names[size_t(i)] ? c.names[size_t(i)] : "?", Device(d), c.calls[d][size_t(i)],
                       c.ms[d][size_t(i)], c.bytes[d][size_t(i)]});
  std::sort(out.begin(), out.end(), [](const PrimitiveTime& a, const PrimitiveTime& b) { return a.ms > b.ms; });
  return out;
}

std::string format_backend_profile(const std::vector<PrimitiveTime>& profile, int runs, double total_ms) {
  std::string s;
  char line[160];
  std::snprintf(line, sizeof line, "  %-28s %-5s %10s %12s %7s %10s\n", "primitive", "dev", "calls/run", "ms/run",
                "share", "GB/s");
  s += line;
  const double per = 1.0 / std::max(1, runs);
  double inside = 0;
  for (const PrimitiveTime& p : profile) {
    inside += p.ms;
    char rate[32] = "";
    if (p.bytes > 0 && p.ms > 0) std::snprintf(rate, sizeof rate, "%.1f", p.bytes / (p.ms * 1e6));
    std::snprintf(line, sizeof line, "  %-28s %-5s %10.1f %12.3f %6.1f%% %10s\n", p.name.c_str(),
                  device_name(p.device), double(p.calls) * per, p.ms * per,
                  total_ms > 0 ? 100.0 * p.ms / total_ms : 0.0, rate);
    s += line;
  }
  const double outside = std::max(0.0, total_ms - inside);
  std::snprintf(line, sizeof line, "  %-28s %-5s %10s %12.3f %6.1f%%\n", "(outside the primitives)", "", "",
                outside * per, total_ms > 0 ? 100.0 * outside / total_ms : 0.0);
  s += line;
  return s;
}

}  // namespace intl
