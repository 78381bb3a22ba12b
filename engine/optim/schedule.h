// Learning-rate schedules as pure functions of the step: per-step linear warm-up then cosine decay to a
// floor (the INTL recipe), multi-step drops, and exponential decay from a to b over a horizon.
#pragma once
#include <cstdint>
#include <vector>

namespace intl {

struct WarmupCosine {
  double base_lr = 0.3;
  int64_t warmup_steps = 0;  // lr rises linearly from base/warmup... to base over these steps
  int64_t total_steps = 1;
  double final_ratio = 0.001;  // floor = final_ratio * base_lr
  double at(int64_t step) const;
};

struct MultiStep {
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;        // optional linear warm-up
  std::vector<int64_t> milestones; // steps at which lr is multiplied by gamma
  double gamma = 0.1;
  double at(int64_t step) const;
};

struct ExponentialDecay {
  double from = 1e-2, to = 1e-6;
  int64_t total_steps = 1;  // lr = from * (to / from)^(step / total_steps)
  double at(int64_t step) const;
};

}  // namespace intl
