// Optimizers over a list of named parameters (PyTorch semantics): SGD with momentum, weight decay and an
// option to exclude 1-D parameters (biases, batch-norm) from decay; Adam and AdamW. The state (momentum and
// moment buffers, step count) is exposed by name for checkpoints. One difference: Adam's bias correction
// counts the optimizer's steps, where PyTorch counts each parameter's own; the two agree whenever every
// parameter has a gradient at every step, as in every training loop here.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace intl {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update with learning rate `lr` from the accumulated gradients; parameters without a gradient are
  // skipped. Does not clear gradients.
  virtual void step(double lr) = 0;
  virtual std::vector<NamedTensor> state() const = 0;  // for checkpoints: buffers by "<param>.<slot>"
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  void zero_grad();

 protected:
  std::vector<NamedTensor> params_;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double momentum = 0.9;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool decay_1d = true;  // false: no weight decay on 1-D parameters (biases, batch-norm)
};

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<NamedTensor> params, SgdOptions options);
  void step(double lr) override;
  std::vector<NamedTensor> state() const override;

 private:
  SgdOptions opt_;
  std::vector<Tensor> momentum_;
};

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = false;  // true: AdamW
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<NamedTensor> params, AdamOptions options);
  void step(double lr) override;
  std::vector<NamedTensor> state() const override;

 private:
  AdamOptions opt_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

}  // namespace intl
