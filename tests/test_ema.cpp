// The momentum network: the cosine momentum schedule and the EMA update against hand computation, buffer
// copies, the no-op at m = 1, and the checks that the two modules match.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/error.h"
#include "models/ema.h"
#include "models/layers.h"

namespace {

using namespace intl;

std::vector<std::vector<double>> values(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::vector<double>> out;
  for (const auto& [name, t] : named) out.push_back(t.to_vector());
  return out;
}

}  // namespace

TEST_CASE("EMA momentum: m0 at the start, 1 at the end, a half cosine between") {
  CHECK(ema_momentum(0, 1000) == doctest::Approx(0.996).epsilon(1e-15));
  CHECK(ema_momentum(500, 1000) == doctest::Approx(0.998).epsilon(1e-15));
  // 1 - 0.5 (1 + cos(pi / 4)) 0.004 = 1 - 0.002 (1 + 0.70710678118654752)
  CHECK(ema_momentum(250, 1000) == doctest::Approx(0.99658578643762690).epsilon(1e-15));
  CHECK(ema_momentum(1000, 1000) == 1.0);
  CHECK(ema_momentum(1200, 1000) == 1.0);
  CHECK(ema_momentum(0, 10, 0.99) == doctest::Approx(0.99).epsilon(1e-15));
  double previous = 0.0;
  for (int step = 0; step <= 100; ++step) {
    const double m = ema_momentum(step, 100);
    CHECK(m >= previous);
    previous = m;
  }
  CHECK_THROWS_AS(ema_momentum(0, 0), Error);
}

TEST_CASE("EMA update: target = m target + (1 - m) online; buffers copied; m = 1 changes nothing") {
  MLP online({3, 4, 2}, false, 1, DType::f64);
  MLP target({3, 4, 2}, false, 2, DType::f64);
  const EmaUpdater ema(online, target);
  for (auto& [name, t] : target.named_parameters()) CHECK_FALSE(t.requires_grad());
  online.named_buffers()[0].second.fill_(0.25);  // "1.running_mean"
  online.named_buffers()[1].second.fill_(3.0);   // "1.running_var"

  const auto o = values(online.named_parameters());
  const auto t0 = values(target.named_parameters());
  REQUIRE(o.size() == 5);  // 0.weight, 1.weight, 1.bias, 3.weight, 3.bias
  CHECK(o[0] != t0[0]);
  ema.update(0.9);
  const auto t1 = values(target.named_parameters());
  for (size_t p = 0; p < o.size(); ++p)
    for (size_t i = 0; i < o[p].size(); ++i) CHECK(t1[p][i] == doctest::Approx(0.9 * t0[p][i] + 0.1 * o[p][i]).epsilon(1e-14));
  CHECK(values(target.named_buffers()) == values(online.named_buffers()));

  // By hand on one entry: t = 0.5, o = -1.5, m = 0.75 -> 0.75 * 0.5 + 0.25 * -1.5 = 0.
  online.named_parameters()[4].second.fill_(-1.5);
  target.named_parameters()[4].second.fill_(0.5);
  ema.update(0.75);
  CHECK(target.named_parameters()[4].second.to_vector() == std::vector<double>{0.0, 0.0});

  const auto before = values(target.named_parameters());
  online.named_buffers()[0].second.fill_(-7.0);
  ema.update(1.0, false);
  CHECK(values(target.named_parameters()) == before);  // bitwise: m = 1 skips the arithmetic
  CHECK(target.named_buffers()[0].second.to_vector()[0] == 0.25);  // buffers left alone

  // Just below 1 (the schedule's last steps), the target still moves, by (1 - m) (o - t).
  online.named_parameters()[4].second.fill_(1.0);
  target.named_parameters()[4].second.fill_(0.0);
  ema.update(1.0 - 1e-9, false);
  for (double v : target.named_parameters()[4].second.to_vector()) CHECK(std::abs(v - 1e-9) < 1e-15);

  // Moving a module makes its parameters trainable again; an update leaves the target's untrainable.
  target.to(Device::cpu);
  REQUIRE(target.named_parameters()[0].second.requires_grad());
  ema.update(0.5, false);
  for (auto& [name, t] : target.named_parameters()) CHECK_FALSE(t.requires_grad());

  ema.update(0.0);  // m = 0: a copy
  for (size_t p = 0; p < o.size(); ++p) {
    const auto online_now = online.named_parameters()[p].second.to_vector();
    const auto target_now = target.named_parameters()[p].second.to_vector();
    for (size_t i = 0; i < online_now.size(); ++i) CHECK(target_now[i] == doctest::Approx(online_now[i]).epsilon(1e-15));
  }
}

TEST_CASE("EMA: copy_online starts the target as the online network; float32 update") {
  MLP online({2, 3, 2}, false, 3);
  MLP target({2, 3, 2}, false, 4);
  const EmaUpdater ema(online, target);
  ema.copy_online();
  CHECK(values(target.named_parameters()) == values(online.named_parameters()));
  CHECK(values(target.named_buffers()) == values(online.named_buffers()));
  online.named_parameters()[0].second.fill_(1.0f);
  ema.update(ema_momentum(0, 100));  // m = 0.996
  const auto t = target.named_parameters()[0].second.to_vector();
  const auto before = values(MLP({2, 3, 2}, false, 3).named_parameters())[0];
  for (size_t i = 0; i < t.size(); ++i) CHECK(t[i] == doctest::Approx(0.996 * before[i] + 0.004).epsilon(1e-6));
}

namespace {
// Two parameters of the same shapes under names of its choosing.
class Pair : public Module {
 public:
  Pair(const std::string& a, const std::string& b) {
    register_parameter(a, Tensor::zeros({2}));
    register_parameter(b, Tensor::zeros({3}));
  }
};
}  // namespace

TEST_CASE("EMA: modules that differ are refused, naming the tensor") {
  Pair wu("w", "u"), wv("w", "v"), wu2("w", "u");
  CHECK_THROWS_WITH_AS(EmaUpdater(wu, wv), doctest::Contains("parameters 1 is u online but v in the target"), Error);
  CHECK_NOTHROW(EmaUpdater(wu, wu2));
  MLP online({3, 4, 2}, false, 1);
  MLP wider({3, 5, 2}, false, 1);
  MLP deeper({3, 4, 4, 2}, false, 1);
  MLP doubled({3, 4, 2}, false, 1, DType::f64);
  try {
    EmaUpdater ema(online, wider);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("0.weight") != std::string::npos);
  }
  CHECK_THROWS_AS(EmaUpdater(online, deeper), Error);
  CHECK_THROWS_AS(EmaUpdater(online, doubled), Error);
  MLP same({3, 4, 2}, false, 2);
  const EmaUpdater ema(online, same);
  CHECK_THROWS_AS(ema.update(1.5), Error);
  CHECK_THROWS_AS(ema.update(-0.1), Error);
}
