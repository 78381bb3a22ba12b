// SGD and Adam(W) on the backend's fused step kernels.
#include "engine/optim/optimizer.h"

#include "engine/backend.h"

namespace intl {

void Optimizer::zero_grad() {
  for (auto& p : params_) p.tensor.zero_grad();
}

Sgd::Sgd(std::vector<NamedTensor> params, SgdOptions options) : opt_(options) {
  params_ = std::move(params);
  for (auto& p : params_) momentum_.push_back(Tensor::zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
}

// Every parameter with a gradient in one backend call per device (a fused step: on CUDA one launch for a few
// dozen tensors, where a loop over parameters would launch one kernel each).
void Sgd::step(double lr) {
  const SgdArgs args{lr, opt_.momentum, opt_.nesterov, steps_ == 0};
  std::vector<SgdParam> on[2];  // by device
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const double wd = (!opt_.decay_1d && p.dim() <= 1) ? 0.0 : opt_.weight_decay;
    on[int(p.device())].push_back({p, g.contiguous(), opt_.momentum > 0 ? momentum_[i] : Tensor(), wd});
  }
  for (int d = 0; d < 2; ++d) {
    if (on[d].empty()) continue;
    backend(Device(d)).sgd_step(args, on[d]);
    for (const SgdParam& sp : on[d]) sp.param.bump_version();
  }
  steps_++;
}

std::vector<NamedTensor> Sgd::state() const {
  std::vector<NamedTensor> s;
  for (size_t i = 0; i < params_.size(); ++i) s.push_back({params_[i].name + ".momentum", momentum_[i]});
  return s;
}

Adam::Adam(std::vector<NamedTensor> params, AdamOptions options) : opt_(options) {
  params_ = std::move(params);
  for (auto& p : params_) {
    exp_avg_.push_back(Tensor::zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
    exp_avg_sq_.push_back(Tensor::zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
  }
}

void Adam::step(double lr) {
  steps_++;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    backend(p.device()).adam_step(p, g.contiguous(), exp_avg_[i], exp_avg_sq_[i], lr, opt_.beta1, opt_.beta2,
                                  opt_.eps, opt_.weight_decay, opt_.decoupled, steps_);
    p.bump_version();
  }
}

std::vector<NamedTensor> Adam::state() const {
  std::vector<NamedTensor> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    s.push_back({params_[i].name + ".exp_avg", exp_avg_[i]});
    s.push_back({params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]});
  }
  return s;
}

}  // namespace intl
