// Fully connected building blocks: Linear (PyTorch's initialisation), BatchNorm1d, and the MLP/projector
// "(Linear, BN, ReLU) x (L - 1), then Linear" used by the toy network and the SSL projector (SPEC 3.4).
#pragma once
#include "models/module.h"

namespace intl {

class Linear : public Module {
 public:
  // W ~ U(-1/sqrt(in), 1/sqrt(in)) and b likewise, as torch.nn.Linear; `seed_stream` picks the Philox stream.
  Linear(int64_t in, int64_t out, bool bias, uint64_t seed, uint64_t seed_stream, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }

 private:
  Tensor& weight_;
  Tensor& bias_;  // aliases weight_ when there is no bias
  bool has_no_bias_ = false;
};

class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(int64_t features, DType dtype = DType::f32, double momentum = 0.1, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;

 private:
  Tensor& weight_;
  Tensor& bias_;
  Tensor& running_mean_;
  Tensor& running_var_;
  Tensor& num_batches_tracked_;  // kept for torchvision's state-dict names; unused with a fixed momentum
  double momentum_, eps_;
};

// widths = {in, h1, ..., out}: Linear(no bias when `bn_hidden`) + BN + ReLU for each hidden layer, then a
// final Linear with bias. Parameter names follow torch.nn.Sequential: "0.weight", "1.running_mean", ...
class MLP : public Module {
 public:
  MLP(const std::vector<int64_t>& widths, bool hidden_bias, uint64_t seed, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;
  const std::vector<std::shared_ptr<Linear>>& linears() const { return linears_; }

 private:
  std::vector<std::shared_ptr<Linear>> linears_;
  std::vector<std::shared_ptr<BatchNorm1d>> norms_;
};

}  // namespace intl
