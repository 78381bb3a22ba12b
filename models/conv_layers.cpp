// Conv2d and BatchNorm2d.
#include "models/conv_layers.h"

#include <cmath>

#include "engine/ops.h"

namespace intl {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, uint64_t seed,
               uint64_t seed_stream, DType dtype)
    : weight_(register_parameter("weight", mul(Tensor::randn({out, in, kernel, kernel}, seed, seed_stream, dtype),
                                               std::sqrt(2.0 / double(out * kernel * kernel))))),
      stride_(stride),
      padding_(padding) {
  if (bias) bias_ = &register_parameter("bias", Tensor::zeros({out}, dtype));
}

Tensor Conv2d::forward(const Tensor& x) const {
  return conv2d(x, weight_, bias_ ? *bias_ : Tensor(), stride_, padding_);
}

BatchNorm2d::BatchNorm2d(int64_t channels, DType dtype, bool zero_weight, double momentum, double eps)
    : weight_(register_parameter("weight", Tensor::full({channels}, zero_weight ? 0.0 : 1.0, dtype))),
      bias_(register_parameter("bias", Tensor::zeros({channels}, dtype))),
      running_mean_(register_buffer("running_mean", Tensor::zeros({channels}, dtype))),
      running_var_(register_buffer("running_var", Tensor::ones({channels}, dtype))),
      num_batches_tracked_(register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64))),
      momentum_(momentum),
      eps_(eps) {}

Tensor BatchNorm2d::forward(const Tensor& x) const {
  return batch_norm_2d(x, weight_, bias_, running_mean_, running_var_, training(), momentum_, eps_);
}

Tensor BatchNorm2d::forward(const Tensor& x, const Tensor& residual, bool relu) const {
  return batch_norm_2d_fused(x, residual, relu, weight_, bias_, running_mean_, running_var_, training(), momentum_,
                             eps_);
}

}  // namespace intl
