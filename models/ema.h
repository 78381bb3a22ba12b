// The momentum (EMA) network of INTL's multi-crop variant (SPEC 2, Figure I(b)): a target copy of the online
// backbone + projector whose parameters follow the online ones, target = m * target + (1 - m) * online,
// with m rising from m0 = 0.996 to 1 on a half cosine over training. The target gets no gradients.
#pragma once
#include <cstdint>

#include "models/module.h"

namespace intl {

constexpr double kEmaBaseMomentum = 0.996;  // m0 [code]

// m(step) = 1 - 0.5 (1 + cos(pi step / total_steps)) (1 - base): base at step 0, 1 at total_steps (steps
// past the end stay at 1).
double ema_momentum(int64_t step, int64_t total_steps, double base = kEmaBaseMomentum);

// Pairs the target's parameters and buffers with the online module's by name. The two modules must be built
// alike (same names, shapes, dtypes); both must outlive the updater and may be moved to a device after it
// is made (tensors are looked up on every call).
class EmaUpdater {
 public:
  // Checks that the modules match and turns off requires_grad on the target's parameters. Throws
  // intl::Error naming the first tensor that differs.
  EmaUpdater(const Module& online, Module& target);

  // target = online, parameters and buffers: the start of training (the authors deep-copy the network).
  void copy_online() const;

  // One momentum step: each target parameter t = m t + (1 - m) o, computed in place as o + m (t - o) with
  // three backend kernels (no scratch memory); m = 1 leaves the target untouched. Buffers (BatchNorm
  // running statistics) are copied from the online module when `copy_buffers`, so the target evaluates
  // with the statistics the online network has seen; the authors' code updates parameters only and leaves
  // the target's own running statistics (from its forward passes in training mode).
  void update(double momentum, bool copy_buffers = true) const;

 private:
  const Module& online_;
  Module& target_;
};

}  // namespace intl
