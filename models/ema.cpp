// The momentum schedule and the in-place EMA update of models/ema.h.
#include "models/ema.h"

#include <cmath>
#include <string>

#include "engine/backend.h"
#include "engine/error.h"

namespace intl {
namespace {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

void check_pairs(const NamedTensors& online, const NamedTensors& target, const char* what) {
  INTL_CHECK(online.size() == target.size(),
             std::string("EMA: the online module has ") + std::to_string(online.size()) + " " + what +
                 ", the target " + std::to_string(target.size()) +
                 " (build both modules with the same configuration)");
  for (size_t i = 0; i < online.size(); ++i) {
    const auto& [name, o] = online[i];
    const Tensor& t = target[i].second;
    INTL_CHECK(name == target[i].first, std::string("EMA: ") + what + " " + std::to_string(i) + " is " + name +
                                            " online but " + target[i].first + " in the target");
    INTL_CHECK(o.shape() == t.shape() && o.dtype() == t.dtype(),
               "EMA: " + name + " is " + shape_str(o.shape()) + " " + dtype_name(o.dtype()) + " online but " +
                   shape_str(t.shape()) + " " + dtype_name(t.dtype()) + " in the target");
  }
}

void check_devices(const Tensor& o, const Tensor& t, const std::string& name) {
  INTL_CHECK(o.device() == t.device() && o.is_contiguous() && t.is_contiguous(),
             "EMA: " + name + " must be contiguous and on one device in both modules (online on " +
                 device_name(o.device()) + ", target on " + device_name(t.device()) +
                 "); move both modules with .to()");
}

}  // namespace

double ema_momentum(int64_t step, int64_t total_steps, double base) {
  INTL_CHECK(total_steps > 0 && step >= 0, "EMA momentum: need step >= 0 and total_steps > 0, found " +
                                               std::to_string(step) + " and " + std::to_string(total_steps));
  if (step >= total_steps) return 1.0;
  const double pi = 3.14159265358979323846;
  return 1.0 - 0.5 * (1.0 + std::cos(pi * double(step) / double(total_steps))) * (1.0 - base);
}

EmaUpdater::EmaUpdater(const Module& online, Module& target) : online_(online), target_(target) {
  check_pairs(online.named_parameters(), target.named_parameters(), "parameters");
  check_pairs(online.named_buffers(), target.named_buffers(), "buffers");
  for (auto& [name, t] : target.named_parameters()) t.requires_grad_(false);
}

void EmaUpdater::copy_online() const {
  const NamedTensors online = online_.named_parameters();
  NamedTensors target = target_.named_parameters();
  const NamedTensors online_buffers = online_.named_buffers();
  NamedTensors target_buffers = target_.named_buffers();
  check_pairs(online, target, "parameters");
  check_pairs(online_buffers, target_buffers, "buffers");
  for (size_t i = 0; i < online.size(); ++i) {
    target[i].second.copy_(online[i].second);
    target[i].second.requires_grad_(false);
  }
  for (size_t i = 0; i < online_buffers.size(); ++i) target_buffers[i].second.copy_(online_buffers[i].second);
}

void EmaUpdater::update(double momentum, bool copy_buffers) const {
  INTL_CHECK(momentum >= 0.0 && momentum <= 1.0, "EMA: momentum " + std::to_string(momentum) + " outside [0, 1]");
  const NamedTensors online = online_.named_parameters();
  NamedTensors target = target_.named_parameters();
  check_pairs(online, target, "parameters");
  for (auto& [name, t] : target) t.requires_grad_(false);  // again: Module::to() turns it back on
  if (momentum < 1.0) {
    for (size_t i = 0; i < online.size(); ++i) {
      const Tensor& o = online[i].second;
      const Tensor& t = target[i].second;
      check_devices(o, t, online[i].first);
      const Backend& b = backend(t.device());
      b.binary(BinaryOp::sub, t, o, t);  // t - o
      b.unary(UnaryOp::scale, t, t, momentum);  // m (t - o)
      b.binary(BinaryOp::add, t, o, t);  // o + m (t - o)
      t.bump_version();
    }
  }
  if (!copy_buffers) return;
  const NamedTensors online_buffers = online_.named_buffers();
  NamedTensors target_buffers = target_.named_buffers();
  check_pairs(online_buffers, target_buffers, "buffers");
  for (size_t i = 0; i < online_buffers.size(); ++i) target_buffers[i].second.copy_(online_buffers[i].second);
}

}  // namespace intl
