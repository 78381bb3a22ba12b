// Schedule formulas.
#include "engine/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace intl {

// Warm-up: lr = base * (step + 1) / warmup for step < warmup (never 0). Then cosine from base to the floor:
// lr = floor + (base - floor) * 0.5 * (1 + cos(pi * t)), t = (step - warmup + 1) / (total - warmup), as the
// authors' adjust_learning_rate (main.py, cifar/main.py): the step after the warm-up is one step into the
// cosine, and the last step (total - 1) runs at the floor.
double WarmupCosine::at(int64_t step) const {
  if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  const double floor = final_ratio * base_lr;
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double t = std::min(1.0, double(step - warmup_steps + 1) / double(span));
  return floor + (base_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * t));
}

double MultiStep::at(int64_t step) const {
  if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  double lr = base_lr;
  for (int64_t m : milestones)
    if (step >= m) lr *= gamma;
  return lr;
}

double ExponentialDecay::at(int64_t step) const {
  const double t = std::min(1.0, double(step) / double(std::max<int64_t>(1, total_steps)));
  return from * std::pow(to / from, t);
}

}  // namespace intl
