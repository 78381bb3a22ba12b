// Convolutional building blocks on NHWC activations (N, H, W, C), the engine's image layout: Conv2d (square
// kernel, groups 1; weight (out, in, k, k) as PyTorch) and BatchNorm2d, with torchvision's parameter names and
// the ResNet initialisation.
#pragma once
#include "models/module.h"

namespace intl {

class Conv2d : public Module {
 public:
  // weight (out, in, kernel, kernel) ~ N(0, 2 / (out * kernel^2)): Kaiming normal, fan_out, ReLU gain, as
  // torchvision initialises ResNet convolutions; bias (if any) zero. `seed_stream` picks the Philox stream.
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, uint64_t seed,
         uint64_t seed_stream, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;
  Tensor& weight() { return weight_; }

 private:
  Tensor& weight_;
  const Tensor* bias_ = nullptr;  // null without bias
  int64_t stride_, padding_;
};

// Per-channel batch normalisation: batch statistics in training (running statistics updated with PyTorch's
// momentum, unbiased variance), running statistics in eval. weight 1, bias 0 unless `zero_weight`.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, DType dtype = DType::f32, bool zero_weight = false, double momentum = 0.1,
                       double eps = 1e-5);
  Tensor forward(const Tensor& x) const;
  // relu?(bn(x) + residual?) in one fused kernel; residual may be undefined.
  Tensor forward(const Tensor& x, const Tensor& residual, bool relu) const;

 private:
  Tensor& weight_;
  Tensor& bias_;
  Tensor& running_mean_;
  Tensor& running_var_;
  Tensor& num_batches_tracked_;  // kept for torchvision's state-dict names; unused with a fixed momentum
  double momentum_, eps_;
};

}  // namespace intl
