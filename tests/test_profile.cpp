// The backend profiler: it counts each primitive once per call (nested calls inside a timed entry belong to
// it), leaves results bit-identical to an unprofiled run, and stops counting when turned off.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "engine/autograd.h"
#include "engine/conv_algorithms.h"
#include "engine/ops.h"
#include "engine/profile.h"

using namespace intl;

namespace {

const PrimitiveTime* find(const std::vector<PrimitiveTime>& p, const std::string& name) {
  for (const PrimitiveTime& t : p)
    if (t.name == name) return &t;
  return nullptr;
}

// A small forward and backward through a matmul, a ReLU and a sum: the gradient of a.
Tensor step(const Tensor& a0, const Tensor& b) {
  Tensor a = a0.clone().detach().requires_grad_(true);
  sum(relu(matmul(a, b))).backward();
  return a.grad();
}

struct ProfilingOff {
  ~ProfilingOff() { set_backend_profiling(false); }
};

}  // namespace

TEST_CASE("the backend profiler counts every primitive call once and changes no result") {
  ProfilingOff guard;
  const Tensor a = Tensor::randn({8, 5}, 3, 1), b = Tensor::randn({5, 4}, 3, 2);
  const Tensor plain = step(a, b);

  reset_backend_profile();
  set_backend_profiling(true);
  const auto start = std::chrono::steady_clock::now();
  const Tensor profiled = step(a, b);
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  set_backend_profiling(false);
  const std::vector<PrimitiveTime> p = backend_profile();

  CHECK(profiled.to_vector() == plain.to_vector());  // bit-identical
  const PrimitiveTime* gemm = find(p, "gemm");
  REQUIRE(gemm != nullptr);
  CHECK(gemm->device == Device::cpu);
  CHECK(gemm->calls == 2);  // forward a b, backward dy b^T (b needs no gradient)
  // Operand bytes, each tensor once: forward a (8x5), b (5x4), c (8x4); backward dc (8x4), b, da (8x5).
  CHECK(gemm->bytes == doctest::Approx(4.0 * ((40 + 20 + 32) + (32 + 20 + 40))));
  CHECK(find(p, "unary") != nullptr);  // the ReLU
  CHECK(find(p, "alloc") == nullptr);  // memory entries pass through untimed
  for (size_t i = 1; i < p.size(); ++i) CHECK(p[i - 1].ms >= p[i].ms);
  // Milliseconds, each call counted in one entry only: together the entries fit in the step's wall time.
  double profiled_ms = 0;
  for (const PrimitiveTime& t : p) profiled_ms += t.ms;
  CHECK(profiled_ms <= wall_ms);

  // Off: nothing more is counted.
  step(a, b);
  CHECK(find(backend_profile(), "gemm")->calls == 2);
  reset_backend_profile();
  CHECK(backend_profile().empty());

  const std::string table = format_backend_profile(p, 1, 10.0);
  CHECK(table.find("gemm") != std::string::npos);
  CHECK(table.find("(outside the primitives)") != std::string::npos);
  CHECK(table.find("GB/s") != std::string::npos);
}

TEST_CASE("the slowest timed convolution passes are listed largest first, with the fastest where it differs") {
  std::vector<ConvPassTime> passes(3);
  passes[0] = {"forward", "x (1, 2, 3, 3), weight (4, 2, 3, 3), stride 1, pad 1", 1, true, true, true, 0.5, 0.5};
  passes[1] = {"backward-filter", "x (1, 2, 3, 3), weight (4, 2, 3, 3), stride 1, pad 1", 1, true, true, true, 2.0,
               1.5};
  passes[2] = {"backward-data", "x (1, 2, 3, 3), weight (4, 2, 3, 3), stride 1, pad 1", 0, false, false, false, 1.0,
               1.0};
  const std::string table = conv_search_slowest(passes, 2);
  INFO(table);
  CHECK(table.find("the 2 slowest of 3 timed convolution passes (85.7% of their 3.50 ms)") == 0);
  const size_t filter = table.find("backward-filter"), data = table.find("backward-data");
  CHECK(filter != std::string::npos);
  CHECK(data > filter);  // largest first
  CHECK(table.find("(fastest 1.500 ms)") != std::string::npos);
  CHECK(table.find("algo 0 fp32 non-deterministic") != std::string::npos);
  CHECK(table.find("forward ") == std::string::npos);  // cut at two
}
