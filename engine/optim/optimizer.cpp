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

void Sgd::step(double lr) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const double wd = (!opt_.decay_1d && p.dim() <= 1) ? 0.0 : opt_.weight_decay;
    backend(p.device()).sgd_step(p, g.contiguous(), opt_.momentum > 0 ? momentum_[i] : Tensor(), lr, opt_.momentum,
                                 wd, opt_.nesterov, steps_ == 0);
    p.bump_version();
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
